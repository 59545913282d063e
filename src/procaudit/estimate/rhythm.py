"""The role-shaped daily and weekly rhythm of process starts, as a prior for partial observations.

A count over a whole week needs no prior: every hour of the week is in it once. A count over less (a log
that retains a day, a 60-second live sample) says little about the week by itself: 60 seconds at 11:00 on a
Tuesday on a workstation are about twice the day's average rate, and a Sunday on a terminal server is a
fifth of a weekday. So partial observations are divided by the share of a mean day that the observed
interval is *expected* to hold under this prior, and the report says by how much that moved the figure.

The prior is an assumption, not a measurement: business hours 08:00-18:00 local time carry a role-dependent
share of the day (workstations and terminal servers most, domain controllers least), and weekend days run
at a role-dependent fraction of a weekday. No public per-role figure exists (see
../shared/reference/events_detections.md section 5.1); pilot measurements beat this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Role = Literal["workstation", "member", "dc", "rds"]

HOUR_SECONDS = 3600
_BUSINESS = range(8, 18)


@dataclass(frozen=True)
class Rhythm:
    """Share of a weekday's process starts in business hours, and a weekend day's level relative to a weekday."""

    business_share: float
    weekend_level: float

    def hour_share(self, hour: int) -> float:
        """Share of one day's starts in the hour ``hour`` (0-23) of that day."""
        if hour in _BUSINESS:
            return self.business_share / len(_BUSINESS)
        return (1 - self.business_share) / (24 - len(_BUSINESS))

    def day_level(self, weekday: int) -> float:
        """A day's starts relative to the mean day of a week (Monday = 0)."""
        week_mean = (5 + 2 * self.weekend_level) / 7
        return (self.weekend_level if weekday >= 5 else 1.0) / week_mean

    def weight(self, local: datetime) -> float:
        """Expected starts in the local hour beginning at ``local``, as a fraction of a mean day's starts."""
        return self.hour_share(local.hour) * self.day_level(local.weekday())

    def peak_weight(self) -> float:
        """The busiest hour of the week, as a fraction of a mean day."""
        return max(self.hour_share(h) for h in range(24)) * self.day_level(0)


RHYTHMS: dict[Role, Rhythm] = {
    "workstation": Rhythm(business_share=0.8, weekend_level=0.1),
    "rds": Rhythm(business_share=0.85, weekend_level=0.2),
    "dc": Rhythm(business_share=0.5, weekend_level=0.9),
    "member": Rhythm(business_share=0.6, weekend_level=0.7),
}


def role_of(product_type: int, terminal_server_mode: int | None) -> Role:
    """The role from Win32_OperatingSystem.ProductType and Win32_TerminalServiceSetting.TerminalServerMode."""
    if product_type == 2:
        return "dc"
    if product_type == 1:
        return "workstation"
    return "rds" if terminal_server_mode == 1 else "member"


def expected_days(role: Role, start: int, end: int, utc_offset_minutes: int) -> float:
    """Mean days' worth of starts the prior expects in [start, end) (seconds since the epoch, UTC).

    Whole weeks give exactly their number of days; the host's local time (UTC offset now) places the hours.
    """
    if end <= start:
        return 0.0
    rhythm = RHYTHMS[role]
    offset = utc_offset_minutes * 60
    total = 0.0
    moment = start
    while moment < end:
        hour_start = (moment + offset) // HOUR_SECONDS * HOUR_SECONDS - offset
        hour_end = min(hour_start + HOUR_SECONDS, end)
        local = datetime.fromtimestamp(hour_start + offset, UTC)
        total += rhythm.weight(local) * (hour_end - moment) / HOUR_SECONDS
        moment = hour_end
    return total
