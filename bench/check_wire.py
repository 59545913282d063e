"""Wire cost of 'procaudit check': bytes and HTTP round trips per host, against the goal (one pipeline, <= 64 KiB).

Runs an in-process lab with one host per profile (the endpoint counts raw socket bytes, headers included,
and HTTP exchanges), probes every host once and prints, per host: pipelines, requests, bytes in/out, and the
total as a share of 64 KiB; then the same for 'ping' as the baseline cost of a session. Figures, not timings:
safe on a busy machine.

    python bench/check_wire.py [--workers 8]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.lab.profiles import PROFILES
from procaudit.lab.runtime import Lab, lab_credentials
from procaudit.ping import ping
from procaudit.readiness.engine import check_hosts
from procaudit.transport.psrp import PsrpConnector

GOAL = 64 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    credentials = lab_credentials()
    with tempfile.TemporaryDirectory() as workdir, Lab(list(PROFILES), credentials=credentials) as lab:
        inventory = Path(workdir) / "lab.yml"
        lab.write_inventory(inventory)
        inv = load_inventory(inventory)
        targets = to_targets(inv, inv.select(None), Overrides())

        def connect(target):  # type: ignore[no-untyped-def]
            return PsrpConnector(target, credentials)

        figures = {}
        for name, run in (
            ("ping", lambda: ping(targets, connect, workers=args.workers)),
            ("check", lambda: check_hosts(targets, connect, workers=args.workers)),
        ):
            for runtime in lab.hosts.values():
                runtime.endpoint.stats.reset()
            run()
            figures[name] = {host: runtime.endpoint.stats for host, runtime in lab.hosts.items()}
            figures[name] = {h: type(s)(**vars(s)) for h, s in figures[name].items()}

        print(
            f"{'host':26} {'pipelines':>9} {'requests':>8} {'bytes in':>9} {'bytes out':>9} {'total':>7} {'of 64K':>6}"
        )
        for host, stats in figures["check"].items():
            total = stats.bytes_in + stats.bytes_out
            print(
                f"{host:26} {stats.pipelines:9d} {stats.requests:8d} {stats.bytes_in:9d} {stats.bytes_out:9d} "
                f"{total:7d} {total / GOAL:6.0%}"
            )
        for name, per_host in figures.items():
            totals = [s.bytes_in + s.bytes_out for s in per_host.values()]
            requests = [s.requests for s in per_host.values()]
            pipelines = {s.pipelines for s in per_host.values()}
            print(
                f"{name}: pipelines/host {sorted(pipelines)}, requests/host {min(requests)}-{max(requests)}, "
                f"bytes/host {min(totals)}-{max(totals)} (max {max(totals) / GOAL:.0%} of 64 KiB)"
            )
        check_max = max(s.bytes_in + s.bytes_out for s in figures["check"].values())
        ping_max = max(s.bytes_in + s.bytes_out for s in figures["ping"].values())
        print(f"ratio check/ping bytes per host (max): {check_max / ping_max:.2f}")


if __name__ == "__main__":
    main()
