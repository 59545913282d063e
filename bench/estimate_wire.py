"""Bytes on the wire per host for 'estimate': a host with ~1e2 process-creation events vs one with ~1e6.

Counting happens on the host, so only hourly counts travel: the two figures differ by the digits of the
counts, not by the events. Both hosts are lab 'ready' servers (4688 with command line, a week in the log);
their activity is set so the 7-day window holds about 1e2 and about 1e6 4688 events. The lab runs in this
process; the figures are the lab endpoint's byte counters (HTTP bodies and headers, NTLM, encryption),
for one fresh connection per host: authentication, runspace pool, the script sent, its JSON back.

    python bench/estimate_wire.py [--window 7d] [--workers 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from procaudit.estimate import EstimateSettings, estimate
from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.lab.runtime import Lab, lab_credentials
from procaudit.transport.psrp import PsrpConnector
from procaudit.units import parse_duration

HOSTS = {"lab-ready-01": 1e2, "lab-ready-02": 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", default="7d")
    args = parser.parse_args()
    hours = int(parse_duration(args.window, option="--window", default_unit="h") // 3600)
    credentials = lab_credentials()
    with tempfile.TemporaryDirectory() as workdir, Lab(["ready", "ready"], credentials=credentials) as lab:
        inventory = Path(workdir) / "lab.yml"
        lab.write_inventory(inventory)
        inv = load_inventory(inventory)
        rows = []
        for name, events in HOSTS.items():
            host = lab.host(name)
            host.activity.per_day = max(1, round(events / (hours / 24)))
            host.security_log.max_size = max(host.security_log.max_size, int(events * 800 * 2 + 512 * 1024**2))
            endpoint = lab.hosts[name].endpoint
            for attempt in range(2):  # the lab rounds each hour: a quiet host logs fewer than per_day says
                endpoint.stats.reset()
                report = estimate(
                    to_targets(inv, inv.select(name), Overrides()),
                    lambda t: PsrpConnector(t, credentials),
                    EstimateSettings(window_hours=hours, sample_seconds=0),
                )
                result = report.hosts[0].estimate
                if result is None:
                    raise SystemExit(f"{name}: no estimate ({report.hosts[0]})")
                if attempt == 0 and result.observed_events:
                    host.activity.per_day = round(host.activity.per_day * events / result.observed_events)
            stats = endpoint.stats
            rows.append((name, result.observed_events, stats.bytes_out, stats.bytes_in, stats.requests))
    print(f"estimate over a {hours} h window, one lab host at a time (no live sample)")
    print(
        f"{'host':<14} {'4688 counted':>13} {'bytes to client':>16} {'bytes from client':>18} {'total':>8} {'HTTP':>5}"
    )
    for name, counted, out, into, requests in rows:
        print(f"{name:<14} {counted:>13,} {out:>16,} {into:>18,} {out + into:>8,} {requests:>5}")
    (_, few, o1, i1, _), (_, many, o2, i2, _) = rows
    print(
        f"events x{many / max(few, 1):,.0f}; bytes on the wire x{(o2 + i2) / (o1 + i1):.3f} "
        f"({(o2 + i2) - (o1 + i1):+,} bytes); the 1e6 events themselves are ~{many * 800 / 1024**2:,.0f} MiB on disk"
    )


if __name__ == "__main__":
    main()
