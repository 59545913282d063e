"""How close 'estimate' comes to the lab's true daily count, per method, at several moments of the week.

The lab's clock is pinned to each moment; the truth is the host's activity.per_day (the mean day of the lab's
rhythm). Live samples are shown at 60 s (the default), 300 s and 3600 s: the lab answers for the whole sample
without waiting it out. Prints one line per host and moment, then the worst error per method.

    python bench/estimate_accuracy.py
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from procaudit.estimate import EstimateSettings, estimate
from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.lab.runtime import Lab, lab_credentials
from procaudit.transport.psrp import PsrpConnector

PROFILES = [
    "ready",
    "rds",
    "small-log",
    "win7-no-kb",
    "cmdline-off",
    "workstation",
    "gpo-managed",
    "fresh-2019",
    "dc",
    "legacy-override",
    "scom",
]
MOMENTS = [(2, 10, "Wed 10:30"), (5, 3, "Sat 03:30"), (0, 19, "Mon 19:30"), (6, 14, "Sun 14:30")]


def pinned(weekday: int, hour: int) -> datetime:
    moment = (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=30, second=0, microsecond=0)
    while moment.weekday() != weekday:
        moment += timedelta(days=1)
    return moment


def main() -> None:
    credentials = lab_credentials()
    worst: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir, Lab(PROFILES, credentials=credentials) as lab:
        inventory = Path(workdir) / "lab.yml"
        lab.write_inventory(inventory)
        inv = load_inventory(inventory)
        targets = to_targets(inv, inv.select(None), Overrides())
        header = ("moment", "host", "method", "conf.", "covered", "estimate", "truth", "error")
        print("{:<10} {:<24} {:<8} {:<7} {:>9} {:>9} {:>7} {:>7}".format(*header))
        for weekday, hour, label in MOMENTS:
            moment = pinned(weekday, hour)
            lab.world.clock = lambda m=moment: m  # type: ignore[misc]
            for sample in (60, 300, 3600):
                report = estimate(
                    targets, lambda t: PsrpConnector(t, credentials), EstimateSettings(sample_seconds=sample)
                )
                for h in report.hosts:
                    e = h.estimate
                    if e is None:
                        print(f"{label:<10} {h.host:<24} {h.status}")
                        continue
                    if e.method == "sample":
                        method = f"sample{sample}"
                    elif sample != 60:
                        continue  # history methods do not depend on the sample length
                    else:
                        method = e.method
                    truth = lab.host(h.host).activity.per_day
                    error = e.events_per_day / truth - 1
                    worst[method] = max(worst.get(method, 0.0), abs(error))
                    covered = (
                        f"{e.coverage_seconds / 3600:.1f} h"
                        if e.coverage_seconds >= 3600
                        else f"{e.coverage_seconds} s"
                    )
                    print(
                        f"{label:<10} {h.host:<24} {method:<8} {e.confidence:<7} {covered:>9} "
                        f"{e.events_per_day:>9,.0f} {truth:>7,} {error:>+7.1%}"
                    )
    print("worst |error| per method: " + ", ".join(f"{m} {v:.1%}" for m, v in sorted(worst.items())))


if __name__ == "__main__":
    main()
