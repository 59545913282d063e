"""Run one job per host on a bounded pool of worker threads, each host isolated from the others.

Every worker opens its own connector (NTLM authenticates a TCP connection; sharing one across threads
breaks it). A host's failure becomes its outcome, never an exception for the run. Ctrl-C stops
launching new hosts; hosts already running finish within their script deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

from procaudit.errors import CancelledError, InternalError, TransportError
from procaudit.transport.base import Connector, HostTarget

log = logging.getLogger(__name__)

T = TypeVar("T")

ConnectorFactory = Callable[[HostTarget], Connector]


@dataclass
class HostOutcome(Generic[T]):
    """The result of one host's job: a value, or the classified error that stopped it."""

    target: HostTarget
    value: T | None = None
    error: TransportError | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class FanoutResult(Generic[T]):
    outcomes: list[HostOutcome[T]]
    interrupted: bool = False


def run_on_hosts(
    targets: Iterable[HostTarget],
    job: Callable[[Connector], T],
    connect: ConnectorFactory,
    *,
    workers: int = 32,
    on_done: Callable[[HostOutcome[T]], None] | None = None,
) -> FanoutResult[T]:
    """Run ``job`` once per host with at most ``workers`` hosts in flight. Outcomes keep the input order."""
    targets = list(targets)
    stop = threading.Event()

    def one(target: HostTarget) -> HostOutcome[T]:
        if stop.is_set():
            return HostOutcome(target, error=CancelledError("not contacted: the run was interrupted"))
        started = time.monotonic()
        connector = connect(target)
        try:
            return HostOutcome(target, value=job(connector), elapsed=time.monotonic() - started)
        except TransportError as exc:
            return HostOutcome(target, error=exc, elapsed=time.monotonic() - started)
        except Exception as exc:  # a bug must not take the other hosts down with it
            log.exception("internal error on %s", target.name)
            error = InternalError(f"internal error ({type(exc).__name__}: {exc}); please report it")
            return HostOutcome(target, error=error, elapsed=time.monotonic() - started)
        finally:
            connector.close()

    outcomes: dict[int, HostOutcome[T]] = {}
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets) or 1)), thread_name_prefix="host")
    futures: dict[Future[HostOutcome[T]], int] = {pool.submit(one, t): i for i, t in enumerate(targets)}
    pending = set(futures)
    try:
        while pending:
            try:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
                continue  # hosts already running finish within their deadline; the rest return 'cancelled'
            for future in done:
                outcome = future.result()
                outcomes[futures[future]] = outcome
                if on_done is not None:
                    on_done(outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    ordered = [
        outcomes.get(i, HostOutcome(t, error=CancelledError("not contacted: the run was interrupted")))
        for i, t in enumerate(targets)
    ]
    return FanoutResult(ordered, interrupted=interrupted)
