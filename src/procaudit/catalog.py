"""Every remote script procaudit ships, with its contract. The contract tests and the lab walk this list."""

from __future__ import annotations

from typing import Any

from procaudit.detections.scom import EXPORT_MP, GET_CANARY_ALERT, IMPORT_MP
from procaudit.estimate.measure import MEASURE_RATE, MEASURE_SAMPLE
from procaudit.facts import GET_PROCAUDIT_FACTS
from procaudit.filecopy import COPY_FILE
from procaudit.ping import GET_HOST_IDENTITY
from procaudit.remote import ScriptSpec
from procaudit.rollout.direct import SET_PROCAUDIT_SETTINGS
from procaudit.rollout.gpo import (
    GET_GPO_STATE,
    IMPORT_GPO,
    INVOKE_POLICY_REFRESH,
    SET_GPO_FILTER,
    SET_GPO_LINK,
    SET_GROUP_MEMBER,
)
from procaudit.verify import TEST_PROCESS_CREATION_EVENT

ALL_SCRIPTS: list[ScriptSpec[Any, Any]] = [
    GET_HOST_IDENTITY,
    MEASURE_RATE,
    MEASURE_SAMPLE,
    GET_PROCAUDIT_FACTS,
    TEST_PROCESS_CREATION_EVENT,
    COPY_FILE,
    EXPORT_MP,
    IMPORT_MP,
    GET_CANARY_ALERT,
    SET_PROCAUDIT_SETTINGS,
    GET_GPO_STATE,
    IMPORT_GPO,
    SET_GPO_FILTER,
    SET_GPO_LINK,
    SET_GROUP_MEMBER,
    INVOKE_POLICY_REFRESH,
]
