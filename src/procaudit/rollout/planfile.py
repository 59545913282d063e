"""Read a rollout plan file into the ``RolloutPlan`` that ``deploy`` executes.

This is the only place that knows the plan JSON. ``procaudit plan`` writes ``procaudit.plan/1``
(``procaudit.rollout.plan.Plan``); the mapping is tolerant so that hand-written plans work too:

* ``waves``: a list, run in the order of ``index`` (1-based) when every wave has one, else in list order.
  Per wave: ``name`` (default ``wave-NN``), ``hosts`` (list of inventory names, or objects with ``host`` /
  ``name``), ``soak_seconds`` (number) or ``soak`` (``30m``, ``2h`` or seconds; default 0) and
  ``max_fail_percent`` (default 0: any failure stops the rollout).
* The Security log size a host should get, in bytes: ``hosts[].log_size_change.requested_max_size`` (what
  ``procaudit plan`` writes), ``waves[].log_size_changes[]`` (``host`` and ``requested_max_size``), or
  ``hosts[].requested_max_size`` / ``log_max_size``. Absent: the log size is left alone.

The gate uses Ansible's ``max_fail_percentage`` semantics: the rollout stops when the failed share of a
wave EXCEEDS the percentage (0 stops at the first failure; 100 never stops).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from procaudit.errors import UserInputError
from procaudit.units import parse_duration


def gate_stops(failed: int, total: int, max_fail_percent: float) -> bool:
    """The gate rule (Ansible semantics): stop when the failed share of a wave's hosts EXCEEDS the percentage."""
    return total > 0 and failed * 100 > max_fail_percent * total


class PlanFileError(UserInputError):
    """The plan file cannot be used; the message names the file and the field."""


class RolloutWave(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=1)
    name: str
    hosts: tuple[str, ...]
    soak_seconds: float = Field(default=0.0, ge=0)
    max_fail_percent: float = Field(default=0.0, ge=0, le=100)

    def should_stop(self, failed: int) -> bool:
        return gate_stops(failed, len(self.hosts), self.max_fail_percent)


class RolloutPlan(BaseModel):
    """Ordered waves of host names, and the Security log size each host should get (bytes, or absent)."""

    model_config = ConfigDict(frozen=True)

    waves: tuple[RolloutWave, ...]
    log_sizes: dict[str, int] = {}
    source: str | None = None
    sha256: str | None = None
    """Digest of the plan file: a journal belongs to one plan."""

    @property
    def hosts(self) -> list[str]:
        return [h for w in self.waves for h in w.hosts]

    def wave_of(self, host: str) -> RolloutWave:
        for wave in self.waves:
            if host in wave.hosts:
                return wave
        raise KeyError(host)

    def digest(self) -> str:
        """What identifies this plan's content (the file digest when read from a file)."""
        if self.sha256:
            return self.sha256
        text = json.dumps(self.model_dump(mode="json", exclude={"source", "sha256"}), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def load_rollout_plan(path: Path) -> RolloutPlan:
    """Read ``path`` (the JSON ``procaudit plan -f json`` writes, or a hand-written one)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PlanFileError(f"--plan {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"--plan {path}: not a JSON document ({exc})") from None
    plan = plan_from_document(document, source=str(path))
    return plan.model_copy(update={"sha256": hashlib.sha256(raw).hexdigest()})


def plan_from_document(document: Any, *, source: str = "plan") -> RolloutPlan:
    """Map a plan document onto ``RolloutPlan`` (see the module docstring for what is read)."""
    if not isinstance(document, dict):
        raise PlanFileError(f"{source}: the plan must be a JSON object with a 'waves' list")
    raw_waves = document.get("waves")
    if not isinstance(raw_waves, list) or not raw_waves:
        raise PlanFileError(f"{source}: 'waves' must be a non-empty list")
    waves: list[RolloutWave] = []
    seen: dict[str, str] = {}
    log_sizes: dict[str, int] = {}
    for position, raw in enumerate(raw_waves, start=1):
        where = f"{source}: waves[{position - 1}]"
        if not isinstance(raw, dict):
            raise PlanFileError(f"{where}: a wave must be an object")
        index = raw.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or index < 1:
            raise PlanFileError(f"{where}: 'index' must be a whole number from 1")
        name = str(raw.get("name") or f"wave-{index:02d}")
        hosts = _hosts(raw.get("hosts"), where)
        for host in hosts:
            if host in seen:
                raise PlanFileError(f"{where}: host {host!r} is also in {seen[host]}; a host belongs to one wave")
            seen[host] = name
        soak = _soak(raw, where)
        fail = raw.get("max_fail_percent", 0)
        if not isinstance(fail, int | float) or isinstance(fail, bool) or not 0 <= fail <= 100:
            raise PlanFileError(f"{where}: 'max_fail_percent' must be a number from 0 to 100")
        waves.append(RolloutWave(index=index, name=name, hosts=hosts, soak_seconds=soak, max_fail_percent=fail))
        for change in raw.get("log_size_changes") or []:
            if isinstance(change, dict) and "host" in change:
                log_sizes[str(change["host"])] = _size(change.get("requested_max_size"), f"{where}.log_size_changes")
    indexes = [w.index for w in waves]
    if len(set(indexes)) != len(indexes):
        raise PlanFileError(f"{source}: two waves have the same index")
    waves.sort(key=lambda w: w.index)
    for position, raw in enumerate(document.get("hosts") or []):
        if not isinstance(raw, dict):
            continue
        host_name = raw.get("host") or raw.get("name")
        if not isinstance(host_name, str):
            continue
        change = raw.get("log_size_change")
        requested = change.get("requested_max_size") if isinstance(change, dict) else None
        requested = requested if requested is not None else raw.get("requested_max_size", raw.get("log_max_size"))
        if requested is not None:
            log_sizes[host_name] = _size(requested, f"{source}: hosts[{position}]")
    unknown = sorted(set(log_sizes) - set(seen))
    if unknown:
        raise PlanFileError(f"{source}: log size requested for host(s) in no wave: {', '.join(unknown)}")
    return RolloutPlan(waves=tuple(waves), log_sizes=log_sizes, source=source)


def _hosts(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise PlanFileError(f"{where}: 'hosts' must be a list of host names")
    names = []
    for item in raw:
        name = item.get("host") or item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name.strip():
            raise PlanFileError(f"{where}: every host must be a non-empty name, got {item!r}")
        names.append(name.strip())
    if len(set(names)) != len(names):
        raise PlanFileError(f"{where}: a host is listed twice")
    return tuple(names)


def _soak(raw: dict[str, Any], where: str) -> float:
    value = raw.get("soak_seconds", raw.get("soak", 0))
    if isinstance(value, bool):
        raise PlanFileError(f"{where}: the soak time must be seconds or a duration such as 30m")
    if isinstance(value, int | float):
        if value < 0:
            raise PlanFileError(f"{where}: the soak time cannot be negative")
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value, option=f"{where}: soak")
        except UserInputError as exc:
            raise PlanFileError(str(exc)) from None
    raise PlanFileError(f"{where}: the soak time must be seconds or a duration such as 30m")


def _size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PlanFileError(f"{where}: requested_max_size must be a positive number of bytes, got {value!r}")
    return value
