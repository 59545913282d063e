"""Faults a lab host can be told to show, parsed from ``HOST=KIND`` specs (HOST may be a glob)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from procaudit.errors import UserInputError

FaultKind = Literal[
    "down", "refuse", "auth-fail", "slow", "hang", "drop", "tls-mismatch", "tls-expired", "tls-untrusted", "no-spn"
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "down",
    "refuse",
    "auth-fail",
    "slow",
    "hang",
    "drop",
    "tls-mismatch",  # the HTTPS certificate names another host
    "tls-expired",  # the HTTPS certificate has expired
    "tls-untrusted",  # the HTTPS certificate comes from a CA outside the lab's bundle
    "no-spn",  # the realm has no HTTP/<host> service principal (Kerberos labs)
)
FAULT_HELP = "down, refuse, auth-fail, slow:<ms>, hang, drop, tls-mismatch, tls-expired, tls-untrusted, no-spn"


@dataclass(frozen=True)
class Fault:
    """One fault. ``slow`` carries its latency in milliseconds; the others carry nothing."""

    kind: FaultKind
    delay_ms: int = 0

    def __str__(self) -> str:
        return f"slow:{self.delay_ms}" if self.kind == "slow" else self.kind


@dataclass(frozen=True)
class FaultRule:
    pattern: str
    fault: Fault


def parse_fault(text: str) -> Fault:
    kind, _, arg = text.strip().partition(":")
    if kind == "slow":
        if not arg.isdigit():
            raise UserInputError(f"fault 'slow' needs a latency in milliseconds, e.g. slow:50 (got {text!r})")
        return Fault("slow", int(arg))
    if kind not in FAULT_KINDS or arg:
        raise UserInputError(f"unknown fault {text!r}; use one of {FAULT_HELP}")
    return Fault(kind)


def parse_fault_rule(spec: str) -> FaultRule:
    """Parse ``HOST=KIND`` where HOST is a host name or a glob such as ``'*'`` or ``'lab-dc-*'``."""
    pattern, sep, kind = spec.partition("=")
    if not sep or not pattern.strip():
        raise UserInputError(f"--fault expects HOST=KIND (e.g. 'lab-ready-01=drop' or '*=slow:50'), got {spec!r}")
    return FaultRule(pattern.strip(), parse_fault(kind))


def faults_for(host: str, rules: list[FaultRule]) -> list[Fault]:
    """All faults whose pattern matches ``host``; a later rule of the same kind replaces an earlier one."""
    chosen: dict[str, Fault] = {}
    for rule in rules:
        if fnmatch.fnmatchcase(host, rule.pattern):
            chosen[rule.fault.kind] = rule.fault
    return list(chosen.values())
