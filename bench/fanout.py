"""Fan-out benchmark: 'ping' over N lab hosts with latency on every exchange, workers=1 vs the default.

Prints the speedup ratio and the client's CPU time per host. The lab runs in a separate process, so the
CPU measured here is procaudit's (pypsrp, NTLM, encryption, our code) and nothing else.

A third row runs the same script on every host with stock pypsrp (its defaults, no procaudit code, same worker
count): the floor the library sets, so the CPU figure can be read as ours vs the library's.

    python bench/fanout.py [--hosts 500] [--latency-ms 50] [--workers 32]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from _lab import CREDENTIALS, lab_process
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.ping import GET_HOST_IDENTITY, ping
from procaudit.transport.base import HostTarget
from procaudit.transport.psrp import PsrpConnector


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stock_pypsrp(target: HostTarget) -> bool:
    """The identity script on one host with pypsrp as its documentation shows it: no deadline, no classification."""
    wsman = WSMan(
        target.address,
        port=target.options.effective_port,
        ssl=False,
        auth="ntlm",
        username=CREDENTIALS.username,
        password=CREDENTIALS.password,
    )
    with wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_script(GET_HOST_IDENTITY.text)
        ps.invoke()
        return not ps.had_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()

    with lab_process(args.hosts, "ready", [f"*=slow:{args.latency_ms}"]) as inventory:
        inv = load_inventory(inventory)
        targets = to_targets(inv, inv.select(None), Overrides())
        rows = []
        for workers in (1, args.workers):
            wall, cpu = time.perf_counter(), cpu_seconds()
            report = ping(targets, lambda t: PsrpConnector(t, CREDENTIALS), workers=workers)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            rows.append((str(workers), wall, cpu * 1000 / len(targets), report.failed))
        wall, cpu = time.perf_counter(), cpu_seconds()
        with ThreadPoolExecutor(args.workers) as pool:
            stock = list(pool.map(stock_pypsrp, targets))
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        rows.append((f"{args.workers} (stock pypsrp)", wall, cpu * 1000 / len(targets), stock.count(False)))
    print(f"ping over {args.hosts} lab hosts, slow:{args.latency_ms} on every HTTP exchange (lab in its own process)")
    print(f"{'workers':>22} {'wall s':>8} {'client CPU ms/host':>19} {'failed':>7}")
    for workers, wall, cpu_ms, failed in rows:
        print(f"{workers:>22} {wall:>8.1f} {cpu_ms:>19.1f} {failed:>7}")
    print(f"speedup workers={args.workers} vs workers=1: {rows[0][1] / rows[1][1]:.1f}x")
    print(f"client CPU, procaudit vs stock pypsrp: {rows[1][2] / rows[2][2]:.2f}x")


if __name__ == "__main__":
    main()
