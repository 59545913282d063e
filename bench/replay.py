"""mp test throughput vs a raw evtx parse of the same file, in one run.

The largest sample .evtx (by records) holds only ~735 records, so each measurement loops over the file
REPEAT times (pyevtx-rs re-parses it every time; nothing is cached) and takes the best of ROUNDS runs.
Two baselines: the bare parse (iterate ``records_json()``) and parse + ``json.loads`` (the least any Python
consumer does to read a field). Prints both ratios; the goal is >= 0.5 of the bare parse.

    PYTHONPATH=src python bench/replay.py [file.evtx]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from evtx import PyEvtxParser

from procaudit.detections.replay import replay
from procaudit.detections.rules import load_rules

REPEAT = 20
ROUNDS = 5
REPO = Path(__file__).resolve().parents[1]


def largest_sample() -> Path:
    shared = Path(os.environ.get("PROCAUDIT_SHARED", REPO.parent / "shared")) / "data" / "events"
    files = sorted(shared.rglob("*.evtx"))
    if not files:
        sys.exit(f"no .evtx samples under {shared} (set PROCAUDIT_SHARED)")
    return max(files, key=lambda p: sum(1 for _ in PyEvtxParser(str(p)).records_json()))


def best(fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


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

    def mp_test() -> None:
        replay([path] * REPEAT, rules)

    def mp_test_no_prefilter() -> None:
        replay([path] * REPEAT, rules, prefilter=False)

    total = records * REPEAT
    results = {name: best(fn) for name, fn in
               [("raw", raw), ("raw+json", raw_loads), ("mp test", mp_test), ("mp test, no prefilter", mp_test_no_prefilter)]}
    print(f"{path.name}: {records} records x {REPEAT} passes, best of {ROUNDS}, {len(rules)} rules")
    for name, seconds in results.items():
        print(f"  {name:24s} {total / seconds:>10,.0f} records/s")
    print(f"ratio mp test / raw parse          = {results['raw'] / results['mp test']:.2f}")
    print(f"ratio mp test / raw parse + json   = {results['raw+json'] / results['mp test']:.2f}")
    print(f"ratio no-prefilter / raw parse     = {results['raw'] / results['mp test, no prefilter']:.2f}")


if __name__ == "__main__":
    main()
