"""``mp test`` throughput vs a raw evtx parse of the same file, in one run.

What is compared, on the largest sample ``.evtx`` (by records):

- **raw parse**: ``for record in PyEvtxParser(path).records_json(): pass`` - pyevtx-rs reads the file, renders each
  record as JSON text and hands Python a dict with that text; nothing is decoded or looked at. This is the floor
  for any Python consumer of the file.
- **raw parse + json.loads**: the same, plus decoding each record's JSON (what reading any field costs without the
  pre-filter).
- **mp test, 1 process**: ``replay([path] * REPEAT, rules, jobs=1)`` with every shipped rule (pre-filter on): the
  cost per CPU.
- **mp test, N processes**: the same as ``procaudit mp test`` runs it by default, one worker process per CPU (the
  input, REPEAT copies of the file, is above the size from which replay spreads over processes). Worker start-up is
  inside the time.
- **mp test, no pre-filter**: every record decoded, mapped and evaluated, in one process.
- **raw parse, N processes**: the raw parse of the same REPEAT copies over a pool of N processes, so that the
  all-CPU figure can also be read per CPU.

The raw parse runs as pyevtx-rs does by default ("let the library decide how many threads", from the CPUs).

The file holds ~735 records, so each measurement loops over it REPEAT times (pyevtx-rs re-parses it every time;
nothing is cached): 100 by default, which keeps worker start-up small beside the work and evens out a noisy
machine (at 20 the figures moved by a third between runs here). The variants are timed in turn within each of
ROUNDS rounds, so a busy neighbour slows them alike, and the best time of each is kept. The goal: mp test at
>= 0.5 of the raw parse's records per second.

    PYTHONPATH=src [REPLAY_REPEAT=100] python bench/replay.py [file.evtx]
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from evtx import PyEvtxParser

from procaudit.detections.replay import default_jobs, replay
from procaudit.detections.rules import load_rules

REPEAT = int(os.environ.get("REPLAY_REPEAT", "100"))
ROUNDS = 7
REPO = Path(__file__).resolve().parents[1]


def largest_sample() -> Path:
    shared = Path(os.environ.get("PROCAUDIT_SHARED", REPO.parent / "shared")) / "data" / "events"
    files = sorted(shared.rglob("*.evtx"))
    if not files:
        sys.exit(f"no .evtx samples under {shared} (set PROCAUDIT_SHARED)")
    return max(files, key=lambda p: sum(1 for _ in PyEvtxParser(str(p)).records_json()))


def parse_only(path: Path) -> int:
    """A raw parse of one file, in a worker process."""
    return sum(1 for _record in PyEvtxParser(str(path)).records_json())


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else largest_sample()
    rules = load_rules(REPO / "detections")
    records = sum(1 for _ in PyEvtxParser(str(path)).records_json())

    def raw() -> None:
        for _ in range(REPEAT):
            for _record in PyEvtxParser(str(path)).records_json():
                pass

    def raw_loads() -> None:
        for _ in range(REPEAT):
            for record in PyEvtxParser(str(path)).records_json():
                json.loads(record["data"])

    jobs = default_jobs()

    def raw_all() -> None:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pool.map(parse_only, [path] * REPEAT)

    def mp_test_one() -> None:
        replay([path] * REPEAT, rules, jobs=1)

    def mp_test_all() -> None:
        if replay([path] * REPEAT, rules, jobs=jobs).processes != jobs:
            sys.exit("replay did not spread over the CPUs: raise REPEAT above the parallel threshold")

    def mp_test_no_prefilter() -> None:
        replay([path] * REPEAT, rules, prefilter=False, jobs=1)

    all_cpus = f"mp test, {jobs} processes"
    raw_cpus = f"raw parse, {jobs} processes"
    variants: dict[str, Callable[[], None]] = {
        "raw parse": raw,
        raw_cpus: raw_all,
        "raw parse + json.loads": raw_loads,
        "mp test, 1 process": mp_test_one,
        all_cpus: mp_test_all,
        "mp test, no pre-filter": mp_test_no_prefilter,
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    total = records * REPEAT
    print(f"{path.name}: {records} records x {REPEAT} passes, best of {ROUNDS} interleaved rounds, {len(rules)} rules")
    for name, seconds in best.items():
        print(f"  {name:26s} {total / seconds:>10,.0f} records/s")
    raw_best = best["raw parse"]
    one = best["mp test, 1 process"]
    print(f"ratio mp test ({jobs} processes) / raw parse  = {raw_best / best[all_cpus]:.2f}")
    print(f"ratio mp test ({jobs} processes) / raw parse ({jobs} processes) = {best[raw_cpus] / best[all_cpus]:.2f}")
    print(f"ratio mp test (1 process) / raw parse    = {raw_best / one:.2f}")
    print(f"ratio mp test (1 process) / raw + json   = {best['raw parse + json.loads'] / one:.2f}")
    print(f"ratio no pre-filter / raw parse          = {raw_best / best['mp test, no pre-filter']:.2f}")


if __name__ == "__main__":
    main()
