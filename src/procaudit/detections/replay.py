"""``mp test``: replay event files through the rules with the same predicate the MP carries.

Hits per rule, alerts per day over the time span the files cover (a span shorter than one day counts as one
day, so short attack captures are not extrapolated), the distinct suppression keys (the fewest alerts SCOM would
raise if no alert were closed), and the matched events, with command lines redacted unless asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from procaudit.detections.prefilter import RawPrefilter
from procaudit.detections.rules import CompiledRule
from procaudit.events.model import ProcessCreationEvent
from procaudit.events.readers import ReadStats, read_events


class RuleHits(BaseModel):
    """What one rule did over all files."""

    rule_id: str
    enabled: bool
    hits: int
    alerts_per_day: float
    distinct_alerts: int = Field(description="distinct suppression keys among the hits")


class FileHits(BaseModel):
    """What reading one file met."""

    file: str
    events: int
    skipped: int
    ignored: int
    hits: dict[str, int]


class MatchRecord(BaseModel):
    """One event a rule matched."""

    rule_id: str
    file: str
    record_id: int | None
    time: str | None
    host: str | None
    new_process_name: str | None
    parent_process_name: str | None
    command_line: str | None


class ReplayResult(BaseModel):
    """The outcome of ``mp test``."""

    events: int
    skipped: int
    ignored: int
    first_time: str | None
    last_time: str | None
    span_days: float
    rules: list[RuleHits]
    files: list[FileHits]
    matches: list[MatchRecord]
    matches_not_listed: int = 0
    problems: list[str] = Field(default_factory=list)


def redact(command_line: str | None) -> str | None:
    """What reports show instead of a command line (which can hold secrets)."""
    if command_line is None:
        return None
    return f"[redacted, {len(command_line)} characters]" if command_line else ""


def _suppression_key(rule: CompiledRule, event: ProcessCreationEvent) -> tuple[str | None, ...]:
    return tuple(event.host if key == "host" else event.field(key) for key in rule.rule.suppression)


def _iso(time: datetime | None) -> str | None:
    return time.isoformat() if time else None


def replay(
    paths: Sequence[Path],
    rules: Sequence[CompiledRule],
    *,
    show_command_lines: bool = False,
    max_matches: int = 1000,
    prefilter: bool = True,
) -> ReplayResult:
    """Run every rule over every event of the files.

    Raises:
        EventFileError: a file cannot be read at all.
    """
    stats = ReadStats()
    hits = {rule.id: 0 for rule in rules}
    keys: dict[str, set[tuple[str | None, ...]]] = {rule.id: set() for rule in rules}
    matches: list[MatchRecord] = []
    not_listed = 0
    files: list[FileHits] = []
    raw_filters = RawPrefilter(rules).checks if prefilter else None
    checks = [(rule, rule.predicate, hits, keys[rule.id]) for rule in rules]
    for path in paths:
        before = (stats.events, stats.skipped, stats.ignored)
        file_hits = dict.fromkeys(hits, 0)
        for event in read_events(path, stats, raw_filters=raw_filters):
            for rule, predicate, counter, seen in checks:
                if not predicate(event):
                    continue
                counter[rule.id] += 1
                file_hits[rule.id] += 1
                seen.add(_suppression_key(rule, event))
                if len(matches) < max_matches:
                    matches.append(
                        MatchRecord(
                            rule_id=rule.id,
                            file=str(path),
                            record_id=event.record_id,
                            time=_iso(event.time),
                            host=event.host,
                            new_process_name=event.NewProcessName,
                            parent_process_name=event.ParentProcessName,
                            command_line=event.CommandLine if show_command_lines else redact(event.CommandLine),
                        )
                    )
                else:
                    not_listed += 1
        files.append(
            FileHits(
                file=str(path),
                events=stats.events - before[0],
                skipped=stats.skipped - before[1],
                ignored=stats.ignored - before[2],
                hits={rule_id: n for rule_id, n in file_hits.items() if n},
            )
        )
    span_days = 0.0
    if stats.first_time and stats.last_time:
        span_days = (stats.last_time - stats.first_time).total_seconds() / 86400
    per_day_divisor = max(span_days, 1.0)
    return ReplayResult(
        events=stats.events,
        skipped=stats.skipped,
        ignored=stats.ignored,
        first_time=_iso(stats.first_time),
        last_time=_iso(stats.last_time),
        span_days=round(span_days, 6),
        rules=[
            RuleHits(
                rule_id=rule.id,
                enabled=rule.rule.enabled,
                hits=hits[rule.id],
                alerts_per_day=round(hits[rule.id] / per_day_divisor, 3),
                distinct_alerts=len(keys[rule.id]),
            )
            for rule in rules
        ],
        files=files,
        matches=matches,
        matches_not_listed=not_listed,
        problems=list(stats.problems),
    )
