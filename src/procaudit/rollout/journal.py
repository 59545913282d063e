"""The deployment journal: one JSON document, rewritten atomically (0600, fsynced) at every state transition.

It is what makes a deployment resumable and reversible:

* Per host: its wave, its state, the values procaudit found BEFORE changing anything (written before any
  change is made, and never overwritten by a later run: a resumed host re-reads its facts but keeps the
  first before-values), the values it set, the last diff, refusals, errors and the rollback's record.
* Per wave: its state, the verification results, the soak's start and end, and the gate decision.
* For the GPO strategy: the GPO, the links, the permissions and the group memberships procaudit created
  (and what was there before), so a rollback removes exactly those.

Host states::

    pending -> reading -> journaled -> applying -> applied -> verified
                                                          \\-> failed
               (any) -> failed | refused;   verified / failed / ... -> rolled_back (by rollback)

A controller killed mid-host leaves ``reading``, ``journaled``, ``applying`` or ``applied`` behind; the next
run with the same journal re-reads that host's facts and converges (the apply is idempotent). No state is
"unknown": each says what may have happened. Credentials never enter the journal.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from procaudit.errors import UserInputError
from procaudit.fsutil import atomic_write
from procaudit.rollout.operations import Change, Refusal

SCHEMA: Final = "procaudit.deploy-journal/1"

HostState = Literal[
    "pending", "reading", "journaled", "applying", "applied", "verified", "failed", "refused", "rolled_back"
]
# States a run leaves a host in only when it was stopped in the middle of that host.
IN_FLIGHT: Final[frozenset[str]] = frozenset({"reading", "journaled", "applying", "applied"})
WaveState = Literal["pending", "running", "verifying", "soaking", "passed", "stopped", "rolled_back"]
Strategy = Literal["direct", "gpo"]


class JournalError(UserInputError):
    """The journal cannot be used (unreadable, another plan's, another strategy's)."""


def now() -> datetime:
    return datetime.now(UTC)


# Error kinds that say the host could not be reached or answered (exit 3), not that a change or check failed.
HOST_PROBLEM_KINDS: Final[frozenset[str]] = frozenset(
    {"unreachable", "auth", "tls", "timeout", "dropped", "protocol", "cancelled", "error"}
)


class HostError(BaseModel):
    at: datetime
    state: str
    """The state the host was in when it failed."""
    kind: str
    message: str

    @property
    def host_problem(self) -> bool:
        return self.kind in HOST_PROBLEM_KINDS


class HostVerify(BaseModel):
    status: str
    """PASS, FAIL or ERROR (procaudit verify), or EXPECTED_FAIL where the OS cannot log command lines."""
    reason: str
    detail: str
    at: datetime

    @property
    def failed(self) -> bool:
        """The failure predicate for verify results (the gate, the host status and the exit code use it)."""
        return self.status in ("FAIL", "ERROR")


class RollbackRecord(BaseModel):
    state: Literal["restored", "partial", "failed", "nothing_to_do"]
    restored: dict[str, int | None] = {}
    skipped: dict[str, str] = {}
    """Item -> why it was left alone (changed by someone else since the deployment)."""
    notes: list[str] = []
    at: datetime


class HostEntry(BaseModel):
    host: str
    wave: int
    state: HostState = "pending"
    computer_name: str | None = None
    before: dict[str, int | None] = {}
    """Item -> its value before procaudit changed it (``None``: absent). Written once per item, never overwritten."""
    after: dict[str, int | None] = {}
    """Item -> the value procaudit set (confirmed by the host)."""
    intended: dict[str, int | None] = {}
    """Item -> the value procaudit meant to set (written with the before-values, before the apply)."""
    changes: list[Change] = []
    """The diff of the latest run (empty when the host needed nothing)."""
    refused: list[Refusal] = []
    notes: list[str] = []
    applied_items: list[str] = []
    """Items an apply confirmed (cumulative over runs)."""
    verify: HostVerify | None = None
    errors: list[HostError] = []
    attempts: int = 0
    outcome_known: bool = True
    """False when the host failed after a change was sent and its settings could not be re-read."""
    membership: str | None = None
    """GPO strategy: the AD group procaudit added this computer to (``None`` when it added none)."""
    rollback: RollbackRecord | None = None
    updated: datetime = Field(default_factory=now)

    def record_before(self, values: dict[str, int | None]) -> None:
        """Keep the first before-value of each item; a later run never overwrites it."""
        for item, value in values.items():
            self.before.setdefault(item, value)


class GateDecision(BaseModel):
    failed: int
    total: int
    max_fail_percent: float
    stop: bool
    reason: str


class WaveEntry(BaseModel):
    index: int
    name: str
    hosts: list[str]
    soak_seconds: float
    max_fail_percent: float
    state: WaveState = "pending"
    started: datetime | None = None
    finished: datetime | None = None
    verify_summary: str | None = None
    soak_started: datetime | None = None
    soak_ended: datetime | None = None
    gate: GateDecision | None = None


LinkState = Literal["absent", "disabled", "enabled"]


class GpoLinkRecord(BaseModel):
    target: str
    created: bool
    """procaudit created this link (it was absent before)."""
    before: LinkState = "absent"
    """The link's state before procaudit touched it: a rollback removes a link that was absent and disables one
    that was disabled (an enabled one procaudit never touches, so it is never recorded)."""
    removed: bool = False
    """A rollback restored the before-state (a later deploy that links again records a fresh before-state)."""

    @model_validator(mode="before")
    @classmethod
    def _before_from_older_journals(cls, data: Any) -> Any:
        # Journals written before ``before`` was recorded only knew ``created``: a link procaudit did not create
        # was there, disabled (an enabled one is never recorded).
        if isinstance(data, dict) and "before" not in data:
            data = {**data, "before": "absent" if data.get("created", True) else "disabled"}
        return data


class GpoGroupRecord(BaseModel):
    name: str
    created: bool
    permission_granted: bool
    members_before: list[str] | None = None
    """The group's members (sAMAccountNames) before procaudit added any: a rollback never removes them."""
    removed: bool = False


class GpoEntry(BaseModel):
    """The domain side of a GPO deployment."""

    dc: str
    name: str
    gpo_id: str | None = None
    created: bool = False
    """Import-GPO created the GPO (it did not exist before)."""
    imported: bool = False
    settings_sha256: str | None = None
    took_over: bool = False
    """The GPO existed with other settings and ``--take-over-gpo`` let procaudit replace them (not reversible)."""
    ous: list[str] = []
    """The ``--ou`` targets of the deployment (a resume with others is refused)."""
    group_prefix: str | None = None
    authenticated_users_before: str | None = None
    """Authenticated Users' (S-1-5-11) permission on the GPO before filtering: ``GpoApply`` for a new GPO,
    ``None`` when it had none (valid once ``authenticated_users_known``)."""
    authenticated_users_known: bool = False
    links: list[GpoLinkRecord] = []
    groups: list[GpoGroupRecord] = []
    state: Literal["pending", "imported", "filtered", "linked", "rolled_back"] = "pending"

    @model_validator(mode="before")
    @classmethod
    def _known_from_older_journals(cls, data: Any) -> Any:
        # Journals written before ``authenticated_users_known`` existed recorded a before-state only once known;
        # re-reading it now would take the permission filtering already set for the one before procaudit.
        if isinstance(data, dict) and "authenticated_users_known" not in data:
            data = {**data, "authenticated_users_known": data.get("authenticated_users_before") is not None}
        return data


class Journal(BaseModel):
    schema_id: Literal["procaudit.deploy-journal/1"] = Field(
        default=SCHEMA, validation_alias="schema", serialization_alias="schema"
    )
    created: datetime = Field(default_factory=now)
    updated: datetime = Field(default_factory=now)
    plan_sha256: str
    plan_source: str | None = None
    strategy: Strategy
    inventory: str | None = None
    force_local: bool = False
    lab: bool = False
    waves: list[WaveEntry]
    hosts: dict[str, HostEntry]
    gpo: GpoEntry | None = None
    runs: int = 0
    """How many deploy runs used this journal."""
    rollbacks: int = 0

    def wave(self, index: int) -> WaveEntry:
        return next(w for w in self.waves if w.index == index)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2) + "\n"


class JournalStore:
    """A journal on disk and the lock that serialises its transitions (hosts run in parallel threads)."""

    def __init__(self, path: Path, journal: Journal) -> None:
        self.path = Path(path)
        self.journal = journal
        self._lock = threading.RLock()
        self.writes = 0

    @classmethod
    def load(cls, path: Path) -> JournalStore:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise JournalError(f"--journal {path}: {exc.strerror or exc}") from None
        try:
            journal = Journal.model_validate(json.loads(text))
        except (json.JSONDecodeError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise JournalError(f"--journal {path}: not a procaudit deploy journal ({first})") from None
        return cls(path, journal)

    def save(self) -> None:
        with self._lock:
            self.journal.updated = now()
            atomic_write(self.path, self.journal.to_json())
            self.writes += 1

    @contextmanager
    def transition(self) -> Iterator[Journal]:
        """Change the journal under the lock; it is written (atomically) when the block ends."""
        with self._lock:
            yield self.journal
            self.save()

    def host(self, name: str, update: Callable[[HostEntry], Any]) -> None:
        """Apply ``update`` to one host's entry and write the journal."""
        with self.transition() as journal:
            entry = journal.hosts[name]
            update(entry)
            entry.updated = now()
