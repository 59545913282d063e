"""Estimate the 4688 volume each host will add: counted on the host, never by moving events."""

from procaudit.estimate.compute import EstimateSettings, HostFigures
from procaudit.estimate.measure import MEASURE_RATE, MEASURE_SAMPLE
from procaudit.estimate.report import EstimateHost, EstimateReport, GroupTotals, estimate, load_estimate

__all__ = [
    "MEASURE_RATE",
    "MEASURE_SAMPLE",
    "EstimateHost",
    "EstimateReport",
    "EstimateSettings",
    "GroupTotals",
    "HostFigures",
    "estimate",
    "load_estimate",
]
