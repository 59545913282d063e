"""Run one job per host on a bounded pool of worker threads, each host isolated from the others.

Every worker opens its own connector (NTLM authenticates a TCP connection; sharing one across threads
breaks it). A host's failure becomes its outcome, never an exception for the run. Ctrl-C stops
launching new hosts and cancels those in flight at their next exchange; a second Ctrl-C stops waiting.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from procaudit.errors import CancelledError, InternalError, TransportError
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.transport.base import Connector, HostTarget

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound=ScriptParams)
R = TypeVar("R", bound=ScriptResult)

ConnectorFactory = Callable[[HostTarget], Connector]


@dataclass
class HostOutcome(Generic[T]):
    """The result of one host's job: a value, or the classified error that stopped it."""

    target: HostTarget
    value: T | None = None
    error: TransportError | None = None
    elapsed: float = 0.0


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
    """Run ``job`` once per host with at most ``workers`` hosts in flight. Outcomes keep the input order.

    The first Ctrl-C (KeyboardInterrupt in the calling thread) cancels the run: hosts not started are not
    contacted, hosts in flight end with a ``cancelled`` error at their next exchange, and the result says
    ``interrupted``. A second Ctrl-C gives up waiting for them and re-raises KeyboardInterrupt.
    """
    targets = list(targets)
    stop = threading.Event()
    live: set[Connector] = set()
    live_lock = threading.Lock()

    def cancel_in_flight() -> None:
        stop.set()
        with live_lock:
            connectors = list(live)
        for connector in connectors:
            _cancel(connector)

    def one(target: HostTarget) -> HostOutcome[T]:
        if stop.is_set():
            return HostOutcome(target, error=CancelledError("not contacted: the run was interrupted"))
        started = time.monotonic()
        connector = connect(target)
        with live_lock:
            live.add(connector)
        if stop.is_set():  # interrupted between the check above and the registration
            _cancel(connector)
        try:
            value = job(_Cancellable(connector, stop))
            return HostOutcome(target, value=value, elapsed=time.monotonic() - started)
        except TransportError as exc:
            return HostOutcome(target, error=exc, elapsed=time.monotonic() - started)
        except Exception as exc:  # a bug must not take the other hosts down with it
            log.exception("internal error on %s", target.name)
            error = InternalError(f"internal error ({type(exc).__name__}: {exc}); please report it")
            return HostOutcome(target, error=error, elapsed=time.monotonic() - started)
        finally:
            with live_lock:
                live.discard(connector)
            connector.close()

    outcomes: dict[int, HostOutcome[T]] = {}
    interrupted = False
    given_up = False
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets) or 1)), thread_name_prefix="host")
    futures: dict[Future[HostOutcome[T]], int] = {}
    # Finished hosts arrive through a queue: waiting on the set of pending futures costs O(hosts) per completion,
    # in the thread that every worker needs the GIL from.
    finished: queue.SimpleQueue[Future[HostOutcome[T]]] = queue.SimpleQueue()
    try:
        try:
            for index, target in enumerate(targets):
                future = pool.submit(one, target)
                futures[future] = index
                future.add_done_callback(finished.put)
        except KeyboardInterrupt:  # Ctrl-C while hosts are being queued: the ones queued are cancelled below
            interrupted = True
            cancel_in_flight()
        pending = set(futures)
        while pending:
            try:
                try:
                    ready = [finished.get(timeout=0.5)]
                except queue.Empty:  # also picks up a completion whose queue entry a Ctrl-C swallowed
                    ready = [f for f in pending if f.done()]
                for future in ready:
                    if future not in pending:
                        continue
                    pending.discard(future)
                    outcome = future.result()
                    outcomes[futures[future]] = outcome
                    if on_done is not None:
                        on_done(outcome)
            except KeyboardInterrupt:
                if interrupted:
                    given_up = True
                    raise
                interrupted = True
                log.info("interrupted: cancelling %d host(s)", len(pending))
                cancel_in_flight()  # the rest return 'cancelled' at their next exchange
    finally:
        if given_up:
            stop.set()
        pool.shutdown(wait=not given_up, cancel_futures=True)
    ordered = [
        outcomes.get(i, HostOutcome(t, error=CancelledError("not contacted: the run was interrupted")))
        for i, t in enumerate(targets)
    ]
    return FanoutResult(ordered, interrupted=interrupted)


def _cancel(connector: Connector) -> None:
    """Ask a connector to give up at its next exchange (``PsrpConnector.cancel``); others stop between scripts."""
    cancel = getattr(connector, "cancel", None)
    if callable(cancel):
        with contextlib.suppress(Exception):
            cancel()


class _Cancellable:
    """The connector a job sees: once the run is interrupted, every further script is refused as cancelled."""

    def __init__(self, inner: Connector, stop: threading.Event) -> None:
        self._inner = inner
        self._stop = stop
        self.target = inner.target

    def _check(self) -> None:
        if self._stop.is_set():
            raise CancelledError.in_flight(self.target.name)

    def open(self) -> None:
        self._check()
        self._inner.open()

    def run(
        self,
        spec: ScriptSpec[P, R],
        params: P,
        *,
        input: Iterable[Any] | None = None,
        timeout: float | None = None,
    ) -> R:
        self._check()
        return self._inner.run(spec, params, input=input, timeout=timeout)

    def close(self) -> None:
        self._inner.close()
