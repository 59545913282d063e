"""Every remote script procaudit ships, with its contract. The contract tests and the lab walk this list."""

from __future__ import annotations

from typing import Any

from procaudit.detections.scom import EXPORT_MP, GET_CANARY_ALERT, IMPORT_MP
from procaudit.estimate.measure import MEASURE_RATE, MEASURE_SAMPLE
from procaudit.facts import GET_PROCAUDIT_FACTS
from procaudit.filecopy import COPY_FILE
from procaudit.ping import GET_HOST_IDENTITY
from procaudit.remote import ScriptSpec
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
]
