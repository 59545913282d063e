"""The lab renders each constant PSRP reply once: the bytes are psrpcore's own, message for message."""

from __future__ import annotations

from typing import Any

import pytest
from psrpcore import ServerRunspacePool
from psrpcore.types import (
    ApplicationPrivateData,
    PSInvocationState,
    PSVersion,
    RunspacePoolState,
    RunspacePoolStateMsg,
    SessionCapability,
)
from psrpcore.types import PipelineState as PipelineStateMsg

from procaudit.lab.wsman import _LabRunspacePool, _outgoing_key

MESSAGES = [
    SessionCapability(
        PSVersion=PSVersion("2.0"), protocolversion=PSVersion("2.3"), SerializationVersion=PSVersion("1.1.0.1")
    ),
    RunspacePoolStateMsg(RunspaceState=RunspacePoolState.Opened),
    PipelineStateMsg(PipelineState=PSInvocationState.Running),
    PipelineStateMsg(PipelineState=PSInvocationState.Completed),
    ApplicationPrivateData(ApplicationPrivateData={"PSVersionTable": {"PSVersion": "5.1.17763.1"}}),
]


def _sent(pool: Any) -> bytes:
    message = pool._send_buffer[-1]
    return bytes(message.data)[40:]  # after destination, type, pool id and pipeline id: the CLIXML


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_rendered_once_and_identical_to_psrpcore(message: Any) -> None:
    assert _outgoing_key(message) is not None
    plain = ServerRunspacePool()
    plain.prepare_message(message)
    for _ in range(2):  # rendered, then served from the memo, on another pool
        lab = _LabRunspacePool()
        lab.prepare_message(message)
        assert _sent(lab) == _sent(plain)
        assert lab._send_buffer[-1].message_type == plain._send_buffer[-1].message_type


def test_replies_with_an_error_or_odd_data_are_rendered_each_time() -> None:
    assert _outgoing_key(ApplicationPrivateData(ApplicationPrivateData={"X": object()})) is None
    assert _outgoing_key("output text") is None
