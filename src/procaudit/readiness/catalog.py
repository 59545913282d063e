"""The readiness check catalog: one YAML file of metadata per check in ``checks/`` (``<check_id>.yaml``).

Each file carries what an administrator reads - ``id``, ``title``, ``short`` (the label in summaries),
``severity``, ``rationale``, ``remediation`` (``text`` plus optional ``gpo`` path and ``command``),
``references`` - and the check's tunable ``params``. ``blocking: false`` marks a check whose UNKNOWN does not
make the host's readiness unknown (it never FAILs either). The logic lives in
``procaudit.readiness.evaluators``, one function per id; the catalog and the evaluators must list the same ids.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from procaudit.content import content_path
from procaudit.errors import ContentError


class Severity(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


class Remediation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    gpo: str | None = None
    """Where to set it in the Group Policy editor."""
    command: str | None = None
    """A command that sets it on one host."""


class CheckMeta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    short: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    severity: Severity
    blocking: bool = True
    rationale: str
    remediation: Remediation
    references: tuple[str, ...] = ()
    params: dict[str, Any] = {}


# The order checks are shown in (the order: settings first, then the log, then the evidence).
ORDER = (
    "audit_process_creation_success",
    "audit_force_subcategory_policy",
    "cmdline_inclusion_enabled",
    "os_supports_cmdline",
    "security_log_capacity",
    "security_log_retention_mode",
    "security_log_reader_exposure",
    "events_4688_with_cmdline_present",
    "scom_agent_healthy",
    "policy_source_consistent",
)


def load_check(path: Path) -> CheckMeta:
    """One check's metadata.

    Raises:
        ContentError: unreadable file, bad YAML, a missing or unknown field, or an id unlike the file name.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContentError(f"cannot read check file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: not valid YAML: {exc}") from exc
    try:
        meta = CheckMeta.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise ContentError(f"{path}: {problems}") from exc
    if meta.id != path.stem:
        raise ContentError(f"{path}: id {meta.id!r} must equal the file name {path.stem!r}")
    return meta


@cache
def load_catalog(folder: Path | None = None) -> tuple[CheckMeta, ...]:
    """Every check in ``checks/*.yaml``, in display order (known ids first, in ``ORDER``)."""
    root = folder or content_path("checks")
    checks = [load_check(p) for p in sorted(root.glob("*.yaml"))]
    if not checks:
        raise ContentError(f"no readiness checks (*.yaml) in {root}")
    rank = {check_id: i for i, check_id in enumerate(ORDER)}
    return tuple(sorted(checks, key=lambda c: (rank.get(c.id, len(rank)), c.id)))
