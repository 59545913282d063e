"""``mp test``: replay event files through the rules with the same predicate the MP carries.

Hits per rule, alerts per day over the time span the files cover (a span shorter than one day counts as one
day, so short attack captures are not extrapolated), the distinct suppression keys (the fewest alerts SCOM would
raise if no alert were closed), and the matched events, with command lines redacted unless asked.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from procaudit.detections.prefilter import RawPrefilter
from procaudit.detections.rules import CompiledRule
from procaudit.events.model import ProcessCreationEvent
from procaudit.events.readers import RawFilters, ReadStats, detect_format, evtx_chunk_count, read_events


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
    processes: int = Field(1, description="worker processes that replayed the files (1: the replay ran in-process)")


def redact(command_line: str | None) -> str | None:
    """What reports show instead of a command line (which can hold secrets)."""
    if command_line is None:
        return None
    return f"[redacted, {len(command_line)} characters]" if command_line else ""


def _suppression_key(rule: CompiledRule, event: ProcessCreationEvent) -> tuple[str | None, ...]:
    return tuple(event.host if key == "host" else event.field(key) for key in rule.rule.suppression)


def _iso(time: datetime | None) -> str | None:
    return time.isoformat() if time else None


#: An .evtx file is replayed in parts of at most this many chunks (8 MiB) when the work is spread over processes.
PART_CHUNKS = 128
#: Below this many bytes of input, replay stays in this process: starting workers would cost more than it saves.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Part:
    """One piece of work: a file, or a range of an .evtx file's chunks."""

    file_index: int
    path: Path
    chunks: tuple[int, int] | None = None


@dataclass
class _PartResult:
    """What replaying one part found; parts merge in file order into the result a single pass would give."""

    part: _Part
    stats: ReadStats
    hits: dict[str, int]
    keys: dict[str, set[tuple[str | None, ...]]]
    matches: list[MatchRecord]
    not_listed: int


@dataclass(frozen=True)
class _Job:
    rules: Sequence[CompiledRule]
    raw_filters: RawFilters | None
    show_command_lines: bool
    max_matches: int


def _replay_part(job: _Job, part: _Part) -> _PartResult:
    stats = ReadStats()
    hits = {rule.id: 0 for rule in job.rules}
    keys: dict[str, set[tuple[str | None, ...]]] = {rule.id: set() for rule in job.rules}
    matches: list[MatchRecord] = []
    not_listed = 0
    checks = [(rule, rule.predicate, keys[rule.id]) for rule in job.rules]
    for event in read_events(part.path, stats, raw_filters=job.raw_filters, chunks=part.chunks):
        for rule, predicate, seen in checks:
            if not predicate(event):
                continue
            hits[rule.id] += 1
            seen.add(_suppression_key(rule, event))
            if len(matches) < job.max_matches:
                command_line = event.CommandLine if job.show_command_lines else redact(event.CommandLine)
                matches.append(
                    MatchRecord(
                        rule_id=rule.id,
                        file=str(part.path),
                        record_id=event.record_id,
                        time=_iso(event.time),
                        host=event.host,
                        new_process_name=event.NewProcessName,
                        parent_process_name=event.ParentProcessName,
                        command_line=command_line,
                    )
                )
            else:
                not_listed += 1
    return _PartResult(part, stats, hits, keys, matches, not_listed)


def _parts(paths: Sequence[Path], split: bool) -> list[_Part]:
    """One part per file; with ``split``, large .evtx files in ranges of ``PART_CHUNKS`` chunks."""
    parts: list[_Part] = []
    for index, path in enumerate(paths):
        count = evtx_chunk_count(path) if split and detect_format(path) == "evtx" else 0
        if count <= PART_CHUNKS:
            parts.append(_Part(index, path))
            continue
        parts.extend(
            _Part(index, path, (first, min(first + PART_CHUNKS, count))) for first in range(0, count, PART_CHUNKS)
        )
    return parts


def default_jobs() -> int:
    """Worker processes for a large replay: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# The job a forked worker inherits (set only while a pool runs): compiled rules hold closures, which cannot be sent.
_FORKED_JOB: _Job | None = None


def _worker_start() -> None:
    # Ctrl-C is the parent's to handle: it stops the pool. (The fork inherited SIGINT blocked; ignored, it is dropped.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _replay_forked(part: _Part) -> _PartResult:
    assert _FORKED_JOB is not None
    return _replay_part(_FORKED_JOB, part)


def _plan(paths: Sequence[Path], jobs: int) -> tuple[list[_Part], int]:
    """The parts to replay and how many processes replay them (1: this one): workers only for a large input, where
    the platform can fork."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):  # reading it will say what is wrong, in file order
            total += path.stat().st_size
    parallel = jobs > 1 and total >= PARALLEL_MIN_BYTES and "fork" in multiprocessing.get_all_start_methods()
    parts = _parts(paths, split=parallel)
    return parts, min(jobs, len(parts)) if parallel else 1


def _results(job: _Job, parts: list[_Part], workers: int) -> Iterator[_PartResult]:
    """Each part's result, in order."""
    global _FORKED_JOB
    if workers < 2:
        for part in parts:
            yield _replay_part(job, part)
        return
    _FORKED_JOB = job
    try:
        # A Ctrl-C while the pool is being built would leave its workers and threads behind: hold it until the pool
        # exists, so that leaving the ``with`` on any exception terminates the workers.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_start)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        with pool:
            yield from pool.imap(_replay_forked, parts)
    finally:
        _FORKED_JOB = None


def replay(
    paths: Sequence[Path],
    rules: Sequence[CompiledRule],
    *,
    show_command_lines: bool = False,
    max_matches: int = 1000,
    prefilter: bool = True,
    jobs: int = 1,
) -> ReplayResult:
    """Run every rule over every event of the files.

    With ``jobs`` above 1 and a large input, files and ranges of large .evtx files are replayed in that many worker
    processes (where the platform can fork); the result is the same as in one pass.

    Raises:
        EventFileError: a file cannot be read at all.
    """
    job = _Job(rules, RawPrefilter(rules).checks if prefilter else None, show_command_lines, max_matches)
    stats = ReadStats()
    hits = {rule.id: 0 for rule in rules}
    keys: dict[str, set[tuple[str | None, ...]]] = {rule.id: set() for rule in rules}
    matches: list[MatchRecord] = []
    not_listed = 0
    files: dict[int, FileHits] = {}
    parts, workers = _plan(paths, jobs)
    for result in _results(job, parts, workers):
        part_stats = result.stats
        stats.events += part_stats.events
        stats.ignored += part_stats.ignored
        stats.skipped += part_stats.skipped
        stats.problems.extend(part_stats.problems[: max(0, 10 - len(stats.problems))])
        stats.note_time(part_stats.first_time)
        stats.note_time(part_stats.last_time)
        for rule_id, count in result.hits.items():
            hits[rule_id] += count
            keys[rule_id] |= result.keys[rule_id]
        room = max(0, max_matches - len(matches))
        matches.extend(result.matches[:room])
        not_listed += result.not_listed + len(result.matches[room:])
        file = files.setdefault(
            result.part.file_index, FileHits(file=str(result.part.path), events=0, skipped=0, ignored=0, hits={})
        )
        file.events += part_stats.events
        file.skipped += part_stats.skipped
        file.ignored += part_stats.ignored
        for rule_id, count in result.hits.items():
            if count:
                file.hits[rule_id] = file.hits.get(rule_id, 0) + count
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
        files=[files[index] for index in sorted(files)],
        matches=matches,
        matches_not_listed=not_listed,
        problems=list(stats.problems),
        processes=workers,
    )
