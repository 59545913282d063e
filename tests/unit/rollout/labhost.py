"""Run the shipped scripts' lab implementations on a modelled host, offline (no WinRM): facts in, changes out.

The same handlers the lab serves over PSRP; here they are called directly so property tests can run thousands
of cases. The JSON each returns is validated with the script's own result model, as the transport does.
"""

from __future__ import annotations

import threading
from typing import Any

from procaudit.facts import GET_PROCAUDIT_FACTS, HostFacts, facts_from_probe
from procaudit.lab.model import LabHost, LabWorld
from procaudit.lab.profiles import build_host
from procaudit.lab.scripts import HANDLERS, HandlerContext, _load_handlers
from procaudit.lab.wsman import ScriptRun
from procaudit.remote import ScriptParams, ScriptSpec
from procaudit.rollout.direct import DEPLOY_PROBE, SET_PROCAUDIT_SETTINGS, SettingsParams, SettingsResult, script_item
from procaudit.rollout.operations import Change


class ScriptFailed(Exception):
    pass


def run(host: LabHost, spec: ScriptSpec[Any, Any], params: ScriptParams, world: LabWorld | None = None) -> Any:
    _load_handlers()
    context = HandlerContext(host, world or LabWorld(hosts={host.name: host}))
    outcome = HANDLERS[spec.name](context, ScriptRun(spec.text, params.to_psrp(), [], threading.Event()))
    if outcome.failure is not None:
        raise ScriptFailed(outcome.failure)
    (document,) = outcome.output
    return spec.result.model_validate_json(document)


def facts(host: LabHost) -> HostFacts:
    return facts_from_probe(run(host, GET_PROCAUDIT_FACTS, DEPLOY_PROBE), host.name)


def apply(host: LabHost, changes: list[Change] | tuple[Change, ...]) -> SettingsResult:
    pairs = [script_item(c) for c in changes]
    params = SettingsParams(item=tuple(i for i, _ in pairs), value=tuple(v for _, v in pairs))
    result: SettingsResult = run(host, SET_PROCAUDIT_SETTINGS, params)
    return result


def lab_host(profile: str, name: str | None = None) -> LabHost:
    return build_host(profile, name or f"lab-{profile}-01")
