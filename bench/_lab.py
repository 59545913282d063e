"""Shared by the benchmarks: run 'procaudit lab up' in its own process so its CPU is not counted as ours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from procaudit.transport.base import Credentials

CREDENTIALS = Credentials("LAB\\bench", "bench-only-password")


@contextmanager
def lab_process(
    count: int, profiles: str, faults: list[str], options: tuple[str, ...] = ("--transport", "http")
) -> Iterator[Path]:
    """A lab in its own process; HTTP with NTLM unless ``options`` say otherwise (the benchmarks' baseline)."""
    workdir = Path(tempfile.mkdtemp(prefix="procaudit-bench-"))
    inventory = workdir / "lab.yml"
    env = {**os.environ, "PROCAUDIT_USER": CREDENTIALS.username, "PROCAUDIT_PASSWORD": CREDENTIALS.password}
    args = [
        sys.executable,
        "-m",
        "procaudit",
        "lab",
        "up",
        "--count",
        str(count),
        "--profiles",
        profiles,
        "--subnet",
        "0",
        "-i",
        str(inventory),
        *options,
    ]
    for fault in faults:
        args += ["--fault", fault]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not inventory.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"lab did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.1)
        yield inventory
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
