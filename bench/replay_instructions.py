"""``mp test`` vs a raw evtx parse in CPU instructions per record, counted by valgrind: a figure a busy machine
cannot move, to read beside ``bench/replay.py``'s records per second.

Each variant runs under ``valgrind --tool=callgrind`` twice, over 0 and over PASSES passes of the largest sample;
the difference, divided by the records read, is what one record costs (start-up cancels out). Needs valgrind
(Debian: ``apt-get install valgrind``); takes a few minutes.

    PYTHONPATH=src python bench/replay_instructions.py [file.evtx]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from evtx import PyEvtxParser
from replay import largest_sample

PASSES = 10
COLLECTED = re.compile(r"Collected : (\d+)")

# One process, no workers: ``replay`` with jobs=1 (the input is small anyway); the raw parse as bench/replay.py.
RUNNER = """
import sys
from pathlib import Path
from evtx import PyEvtxParser
from procaudit.detections.replay import replay
from procaudit.detections.rules import load_rules
mode, path, passes, rules_dir = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
rules = load_rules(rules_dir)
for _ in range(passes if mode == "raw" else 0):
    for _record in PyEvtxParser(str(path)).records_json():
        pass
if mode == "mp" and passes:
    replay([path] * passes, rules, jobs=1)
"""


def instructions(mode: str, path: Path, passes: int) -> int:
    rules_dir = Path(__file__).resolve().parents[1] / "detections"
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", RUNNER]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [*command, mode, str(path), str(passes), str(rules_dir)], capture_output=True, text=True, env=env, check=True
    )
    found = COLLECTED.search(done.stderr)
    if found is None:
        sys.exit(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else largest_sample()
    records = sum(1 for _ in PyEvtxParser(str(path)).records_json()) * PASSES
    per_record = {
        mode: (instructions(mode, path, PASSES) - instructions(mode, path, 0)) / records for mode in ("raw", "mp")
    }
    print(f"{path.name}: {records} records ({PASSES} passes), instructions per record counted by callgrind")
    print(f"  raw parse   {per_record['raw']:>10,.0f}")
    print(f"  mp test     {per_record['mp']:>10,.0f}")
    print(f"ratio (raw parse / mp test instructions) = {per_record['raw'] / per_record['mp']:.2f}")


if __name__ == "__main__":
    main()
