"""The HTML report in headless Chromium (Debian 'chromium'): it renders, and the chart is visible.

The screenshot is kept as a test artefact (pytest's tmp directory, path printed) for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.facts import HostFacts
from procaudit.readiness.catalog import load_catalog
from procaudit.readiness.engine import _error_host, _report, readiness_for
from procaudit.report.readiness import readiness_html

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
Facts = Callable[[str], HostFacts]


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG, decoded with the standard library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        offset += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        previous = line
    return width, height, rows


def count_colour(rows: list[bytes], rgb: tuple[int, int, int]) -> int:
    needle = bytes(rgb)
    return sum(sum(1 for i in range(0, len(row), 3) if row[i : i + 3] == needle) for row in rows)


def test_report_renders_with_a_visible_chart(lab_facts: Facts, tmp_path: Path) -> None:
    catalog = load_catalog()
    hosts = [
        readiness_for(lab_facts("ready"), catalog, groups=["servers"]),
        readiness_for(lab_facts("cmdline-off"), catalog, groups=["servers"]),
        readiness_for(lab_facts("workstation"), catalog, groups=["workstations"]),
        _error_host("lab-dc-01", "unreachable", "connection refused", address="127.0.0.9", groups=["dcs"]),
    ]
    page = tmp_path / "readiness.html"
    page.write_text(readiness_html(_report(hosts, catalog, "winrm")), encoding="utf-8")
    url = page.as_uri()

    dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<div id="readiness-chart"><svg', dom.stdout)
    bars = re.findall(r'fill="(#[0-9a-f]{6})"[^>]*data-value="(\d+)"><title>([^<:]+):', dom.stdout)
    assert sorted(bars) == sorted(
        [
            ("#616161", "1", "unreachable / error"),  # dcs
            ("#2e7d32", "1", "ready"),  # servers
            ("#c62828", "1", "not ready"),  # servers
            ("#c62828", "1", "not ready"),  # workstations
        ]
    )

    shot = tmp_path / "readiness.png"
    result = chromium("--window-size=1200,1000", f"--screenshot={shot}", url, profile=tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    print(f"screenshot: {shot}")
    width, height, rows = png_pixels(shot)
    assert (width, height) == (1200, 1000)
    # The bars are drawn in the report's colours: ready green, not-ready red, error grey - all on screen.
    assert count_colour(rows, (0x2E, 0x7D, 0x32)) > 2000
    assert count_colour(rows, (0xC6, 0x28, 0x28)) > 2000
    assert count_colour(rows, (0x61, 0x61, 0x61)) > 1000
