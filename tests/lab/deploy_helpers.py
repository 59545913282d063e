"""Shared by the deploy tests: a lab session, the settings deploy may change, and the journal audits
(hosts left in an unknown state, before-values lost) the fault-injection tests and bench/deploy_faults.py count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from procaudit.facts import HostFacts
from procaudit.fanout import run_on_hosts
from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.rollout.direct import read_facts
from procaudit.rollout.journal import IN_FLIGHT, Journal, JournalStore
from procaudit.rollout.operations import CMDLINE_ITEM, FORCE_ITEM, LOG_SIZE_ITEM, current_value
from procaudit.transport.base import Connector, HostTarget
from procaudit.transport.psrp import PsrpConnector
from tests.lab.conftest import LabHandle, start_lab

Settings = dict[str, int | None]


class Session:
    def __init__(self, handle: LabHandle, overrides: Overrides | None = None) -> None:
        self.handle = handle
        inventory = load_inventory(handle.inventory)
        self.targets: dict[str, HostTarget] = {
            t.name: t for t in to_targets(inventory, inventory.select(None), overrides or Overrides())
        }

    def connect(self, target: HostTarget) -> Connector:
        return PsrpConnector(target, self.handle.credentials)

    def facts(self, names: list[str] | None = None) -> dict[str, HostFacts]:
        chosen = [self.targets[n] for n in names or list(self.targets)]
        result = run_on_hosts(chosen, read_facts, self.connect)
        out = {}
        for outcome in result.outcomes:
            assert outcome.value is not None, f"{outcome.target.name}: {outcome.error}"
            out[outcome.target.name] = outcome.value
        return out


@contextmanager
def lab_session(
    tmp_path: Path, profiles: list[str], faults: list[str] | None = None, overrides: Overrides | None = None
) -> Iterator[Session]:
    for handle in start_lab(tmp_path, profiles, faults):
        yield Session(handle, overrides)


def settings_of(facts: HostFacts) -> Settings:
    """Every value deploy may change on a host, by item key (all 59 subcategories, both registry values, log size)."""
    assert facts.audit is not None, facts.problems
    values: Settings = {f"audit:{guid}": value for guid, value in facts.audit.settings.items()}
    for item in (FORCE_ITEM, CMDLINE_ITEM, LOG_SIZE_ITEM):
        values[item] = current_value(facts, item)
    return values


def unknown_hosts(journal: Journal) -> list[str]:
    """Hosts whose state nobody knows: stopped mid-change, or failed after a change with no re-read."""
    return sorted(
        name
        for name, entry in journal.hosts.items()
        if entry.state in IN_FLIGHT or (entry.state == "failed" and not entry.outcome_known)
    )


def lost_before_values(journal: Journal, originals: dict[str, Settings], now: dict[str, Settings]) -> list[str]:
    """Items changed on a host whose original value the journal does not hold (exactly)."""
    lost = []
    for host, original in originals.items():
        entry = journal.hosts.get(host)
        for item, value in original.items():
            changed = now[host].get(item) != value
            journalled = entry is not None and item in entry.before
            if (changed and not journalled) or (journalled and entry is not None and entry.before[item] != value):
                lost.append(f"{host} {item}: original {value}, journal {entry.before.get(item, '-') if entry else '-'}")
    return lost


def load(path: Path) -> Journal:
    return JournalStore.load(path).journal


class JournalWatch:
    """Poll a journal file in a thread and act when a condition on it first holds (fault injection)."""

    def __init__(self, path: Path, condition: Callable[[Journal], bool], action: Callable[[Journal], None]) -> None:
        import threading

        self.path = path
        self.condition = condition
        self.action = action
        self.fired = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and not self.fired.is_set():
            try:
                journal = load(self.path)
            except Exception:  # not written yet, or caught mid-rename: the next poll sees it
                journal = None
            if journal is not None and self.condition(journal):
                self.action(journal)
                self.fired.set()
            self._stop.wait(0.005)

    def __enter__(self) -> JournalWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.01) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
