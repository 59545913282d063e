"""Fault matrix: each lab fault against the real command line, with healthy hosts in the same run.

One lab in its own process serves healthy hosts and one host per fault, over the default transport (HTTPS
with the lab CA) and, when an MIT KDC is installed, Kerberos (the lab realm; the Kerberos failure is a host
without an SPN). For each fault, ``procaudit ping`` and ``procaudit check`` run (subprocesses, as an
administrator runs them) on the faulty host plus the healthy ones, with ``--script-timeout DEADLINE`` (the whole
per-host budget) and ``--connect-timeout``. Each table shows what each fault was classified as, the exit code,
the seconds until the faulty host was classified (the report's ``elapsed_ms``), and whether the healthy hosts of
that run stayed unaffected and how their time compares with a run without faults. A final run takes every
host at once.

Goal: every fault classified as expected, none slower than DEADLINE + 10 %, healthy hosts unaffected.
The same matrix then runs ``procaudit check`` (one probe per host) with the same deadline.

    python bench/faults.py [--deadline 5] [--connect-timeout 2] [--transport https|http]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from procaudit.lab.kdc import gssapi_available, missing_tools

USER, PASSWORD = "LAB\\faults", "faults-bench-only-password"


@dataclass(frozen=True)
class Row:
    label: str  # the fault as the issue names it
    spec: str  # lab --fault kind
    profile: str
    expected: str  # error kind, or "ok"


ROWS = [
    Row("down", "down", "dc", "unreachable"),
    Row("refuse", "refuse", "rds", "unreachable"),
    Row("auth-fail", "auth-fail", "workstation", "auth"),
    Row("slow:2000", "slow:2000", "cmdline-off", "timeout"),
    Row("slow:300 (within deadline)", "slow:300", "small-log", "ok"),
    Row("hang", "hang", "fresh-2019", "timeout"),
    Row("drop", "drop", "legacy-override", "dropped"),
    Row("TLS mismatch", "tls-mismatch", "gpo-managed", "tls"),
    Row("TLS expired", "tls-expired", "no-scom-agent", "tls"),
    Row("Kerberos: no SPN", "no-spn", "dc", "auth"),
]
HEALTHY = ("ready", "ready", "ready")


def start_lab(work: Path, rows: list[Row], options: list[str]) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    plan = [*HEALTHY, *(r.profile for r in rows)]
    names = _names(plan)
    faults = [f"{name}={row.spec}" for name, row in zip(names[len(HEALTHY) :], rows, strict=True)]
    inventory = work / "lab.yml"
    argv = [sys.executable, "-m", "procaudit", "lab", "up", "--profiles", ",".join(plan), "-i", str(inventory)]
    argv += ["--subnet", "0", *options]
    for fault in faults:
        argv += ["--fault", fault]
    env = {**os.environ, "PROCAUDIT_USER": USER, "PROCAUDIT_PASSWORD": PASSWORD}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    client_env = {**env, "KRB5CCNAME": f"FILE:{work / 'ccache'}", "COLUMNS": "200"}
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"lab did not start (exit {proc.returncode})")
        if "KRB5_CONFIG=" in line:
            client_env["KRB5_CONFIG"] = line.split("KRB5_CONFIG=", 1)[1].split()[0].strip("'\"")
        if "serving until" in line:
            return proc, inventory, client_env
    raise SystemExit("lab did not start within 120 s")


def _names(plan: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for profile in plan:
        seen[profile] = seen.get(profile, 0) + 1
        names.append(f"lab-{profile}-{seen[profile]:02d}")
    return names


# A healthy run's exit code: ping has no findings; check exits 1 when a healthy host has a FAIL finding.
HEALTHY_EXITS = {"ping": (0,), "check": (0, 1)}


def run(
    command: str, inventory: Path, hosts: list[str], env: dict[str, str], args: argparse.Namespace
) -> tuple[int, dict, float]:
    argv = [sys.executable, "-m", "procaudit", command, "-i", str(inventory), "--limit", ",".join(hosts), "-f", "json"]
    argv += ["--script-timeout", str(args.deadline), "--connect-timeout", str(args.connect_timeout)]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    wall = time.monotonic() - started
    if result.returncode not in (*HEALTHY_EXITS[command], 3):
        raise SystemExit(f"{command} exit {result.returncode}: {result.stderr}")
    return result.returncode, {h["host"]: h for h in json.loads(result.stdout)["hosts"]}, wall


def kind_of(host: dict) -> str:
    return host["error"]["kind"] if host["error"] else "ok"


def matrix(
    command: str, inventory: Path, rows: list[Row], names: list[str], env: dict[str, str], args: argparse.Namespace
) -> bool:
    """Run one command over every fault and print its table; True when every fault was classified in time."""
    healthy, faulty = names[: len(HEALTHY)], names[len(HEALTHY) :]
    limit = args.deadline * 1.1
    _code, base, _wall = run(command, inventory, healthy, env, args)
    baseline = max(h["elapsed_ms"] for h in base.values())
    table = []
    for row, host in zip(rows, faulty, strict=True):
        code, hosts, _wall = run(command, inventory, [host, *healthy], env, args)
        got = kind_of(hosts[host])
        seconds = hosts[host]["elapsed_ms"] / 1000
        calm = all(kind_of(hosts[h]) == "ok" and hosts[h]["status"] == base[h]["status"] for h in healthy)
        slowest = max(hosts[h]["elapsed_ms"] for h in healthy)
        table.append((row, got, code, seconds, calm, slowest / baseline, hosts[host]))
    code_all, everything, wall_all = run(command, inventory, names, env, args)

    print(f"procaudit {command}:")
    header = f"{'fault':<27} {'expected':<12} {'classified':<12} {'exit':>4} {'s to classify':>13} {'<= limit':>8} "
    header += f"{'healthy OK':>10} {'healthy time x':>14}"
    print(header)
    print("-" * len(header))
    good = True
    for row, got, code, seconds, calm, ratio, _host in table:
        within = seconds <= limit
        expected_exits = HEALTHY_EXITS[command] if row.expected == "ok" else (3,)
        good &= got == row.expected and within and calm and code in expected_exits
        print(
            f"{row.label:<27} {row.expected:<12} {got:<12} {code:>4} {seconds:>13.2f} {'yes' if within else 'NO':>8} "
            f"{'yes' if calm else 'NO':>10} {ratio:>14.2f}"
        )
    all_ok = all(
        kind_of(everything[h]) == (r.expected if r else "ok")
        for h, r in zip(names, [None] * len(healthy) + rows, strict=True)
    )
    slowest_all = max(h["elapsed_ms"] for h in everything.values()) / 1000
    print(
        f"\nall {len(names)} hosts in one run: exit {code_all}, every host classified as expected: "
        f"{'yes' if all_ok else 'NO'}, slowest host {slowest_all:.2f} s, wall {wall_all:.2f} s"
    )
    print(f"healthy baseline (no faults in the run): slowest healthy host {baseline / 1000:.3f} s")
    print("messages:")
    for row, _got, _code, _seconds, _calm, _ratio, host in table:
        if host["error"]:
            print(f"  {row.label}: {host['error']['message']}")
    print()
    return good and all_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deadline", type=float, default=5.0, help="--script-timeout: ping's per-host deadline (s)")
    parser.add_argument("--connect-timeout", type=float, default=2.0)
    parser.add_argument("--transport", choices=("https", "http"), default="https")
    args = parser.parse_args()

    kerberos = not missing_tools() and gssapi_available()
    rows = [r for r in ROWS if kerberos or r.spec != "no-spn"]
    if args.transport == "http":
        rows = [r for r in rows if not r.spec.startswith("tls-")]
    options = ["--transport", args.transport, *(["--kerberos"] if kerberos else [])]
    work = Path(tempfile.mkdtemp(prefix="procaudit-faults-"))
    proc, inventory, env = start_lab(work, rows, options)
    names = _names([*HEALTHY, *(r.profile for r in rows)])
    auth = "Kerberos" if kerberos else "NTLM"
    print(f"fault matrix: {args.transport.upper()} + {auth}, lab in its own process")
    print(
        f"deadline (--script-timeout) {args.deadline:g} s, --connect-timeout {args.connect_timeout:g} s; "
        f"limit {args.deadline * 1.1:.2f} s\n"
    )
    try:
        good = all([matrix(command, inventory, rows, names, env, args) for command in ("ping", "check")])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    print(f"verdict: {'every fault classified correctly within the deadline' if good else 'FAILURES above'}")
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
