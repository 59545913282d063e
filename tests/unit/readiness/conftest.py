"""Facts of lab profiles without a network: the lab's probe implementation fed straight to the real parsers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from procaudit.facts import HostFacts, ProbeParams, ProbeResult, facts_from_probe
from procaudit.lab.model import LabHost, LabWorld
from procaudit.lab.profiles import build_host
from procaudit.lab.scripts import HANDLERS, HandlerContext, _load_handlers
from procaudit.lab.wsman import ScriptRun


def probe_lab_host(host: LabHost, params: ProbeParams | None = None) -> ProbeResult:
    _load_handlers()
    run = ScriptRun("", (params or ProbeParams()).to_psrp(), [], threading.Event())
    outcome = HANDLERS["Get-ProcAuditFacts"](HandlerContext(host, LabWorld()), run)
    return ProbeResult.model_validate(json.loads(outcome.output[0]))


@pytest.fixture
def lab_facts() -> Callable[[str], HostFacts]:
    def make(profile: str) -> HostFacts:
        return facts_from_probe(probe_lab_host(build_host(profile, f"lab-{profile}-01")))

    return make
