"""``mp test`` spread over worker processes: parts of .evtx files read apart, merged into the one-pass result."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.detections import replay as replay_module
from procaudit.detections.replay import replay
from procaudit.detections.rules import CompiledRule
from procaudit.errors import EventFileError
from procaudit.events import ReadStats, read_events
from procaudit.events.readers import evtx_chunk_count

LARGEST = "security4688/mdec_4688_tchopper_735_events.evtx"


def _damaged_copy(events_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "damaged.evtx"
    shutil.copy(events_dir / LARGEST, path)
    data = bytearray(path.read_bytes())
    data[4096 + 2 * 65536 : 4096 + 2 * 65536 + 8] = b"XXXXXXXX"  # the third chunk's magic
    path.write_bytes(bytes(data))
    return path


def _inputs(events_dir: Path, tmp_path: Path) -> list[Path]:
    samples = sorted(p for p in events_dir.rglob("*") if p.suffix in (".evtx", ".json", ".jsonl"))
    return [*samples, _damaged_copy(events_dir, tmp_path), events_dir / LARGEST]


@pytest.fixture
def split_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Go parallel on any input and cut .evtx files into parts of two chunks, so every sample is split."""
    monkeypatch.setattr(replay_module, "PART_CHUNKS", 2)
    monkeypatch.setattr(replay_module, "PARALLEL_MIN_BYTES", 0)


@pytest.mark.parametrize(("max_matches", "show"), [(1000, False), (3, True)])
@pytest.mark.usefixtures("split_small")
def test_parallel_replay_gives_the_one_pass_result(
    rules: list[CompiledRule], events_dir: Path, tmp_path: Path, max_matches: int, show: bool
) -> None:
    files = _inputs(events_dir, tmp_path)
    one_pass = replay(files, rules, max_matches=max_matches, show_command_lines=show, jobs=1)
    parallel = replay(files, rules, max_matches=max_matches, show_command_lines=show, jobs=3)
    assert (one_pass.processes, parallel.processes) == (1, 3)
    assert parallel.model_dump(exclude={"processes"}) == one_pass.model_dump(exclude={"processes"})
    assert one_pass.skipped >= 1 and one_pass.problems  # the damaged chunk is counted the same way
    if max_matches < 1000:
        assert one_pass.matches_not_listed > 0  # the cap is applied across parts as in one pass


@pytest.mark.usefixtures("split_small")
def test_parallel_replay_names_an_unreadable_file(rules: list[CompiledRule], events_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.evtx"
    bad.write_bytes(b"ElfFile\x00garbage")
    with pytest.raises(EventFileError, match=r"bad\.evtx"):
        replay([events_dir / LARGEST, bad, events_dir / LARGEST], rules, jobs=2)


def test_chunk_ranges_read_the_records_of_the_whole_file(events_dir: Path) -> None:
    path = events_dir / LARGEST
    count = evtx_chunk_count(path)
    whole = [event.record_id for event in read_events(path)]
    parts = [
        event.record_id
        for first in range(0, count, 3)
        for event in read_events(path, ReadStats(), chunks=(first, min(first + 3, count)))
    ]
    assert count > 3 and len(whole) == 735
    assert parts == whole


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(child) for child in text.split()}


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the worker processes")
def test_ctrl_c_stops_a_parallel_replay_and_its_workers(events_dir: Path) -> None:
    # 300 passes over the largest sample (330 MB): far above the size from which replay uses workers.
    process = subprocess.Popen(
        [sys.executable, "-m", "procaudit", "mp", "test", "--jobs", "2", *[str(events_dir / LARGEST)] * 300],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait(lambda: len(_children(process.pid)) >= 2 or process.poll() is not None, "the worker processes")
        workers = _children(process.pid)
        assert process.poll() is None and len(workers) >= 2, "the replay ended before its workers could be seen"
        os.kill(process.pid, signal.SIGINT)  # the operator's Ctrl-C
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and out == ""
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), "the workers to be gone", timeout=10)
