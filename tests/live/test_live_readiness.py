"""What the lab models about the readiness probe and verify, checked on a real host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from procaudit.facts import GET_PROCAUDIT_FACTS, ProbeParams, facts_from_probe
from procaudit.transport.psrp import PsrpConnector

pytestmark = pytest.mark.live


def test_probe_returns_parseable_raw_material(live: PsrpConnector) -> None:
    # The lab answers from its model; here Windows answers. Every part the lab fills must parse from the
    # real host's output too: auditpol /backup, wevtutil gl, the trimmed gpresult (well-formed, not repaired),
    # the secedit [Event Audit] section, and the host-side counts.
    raw = live.run(GET_PROCAUDIT_FACTS, ProbeParams(window_hours=1, max_events=200))
    facts = facts_from_probe(raw, "live")
    assert not facts.problems, facts.problems
    assert facts.audit is not None and facts.audit.process_creation in (0, 1, 2, 3)
    assert len(facts.audit.settings) >= 59
    assert facts.legacy is not None and "AuditProcessTracking" in facts.legacy.categories
    assert facts.security_log is not None and facts.security_log.max_size and facts.security_log.channel_access
    assert facts.security_log.oldest_record is not None and facts.security_log.oldest_record < facts.collected_at
    assert facts.readers is not None and facts.readers.event_log_readers is not None
    assert facts.events_4688 is not None and facts.events_4688.sampled <= 200
    assert facts.policy is not None and not facts.policy.repaired
    assert abs(facts.collected_at - datetime.now(UTC)) < timedelta(minutes=10)
    assert facts.scom.installed == (facts.scom.state is not None)


def test_verify_marker_is_found_on_windows(live: PsrpConnector) -> None:
    # On a host with auditing and command lines on, the marker's 4688 must be found by process id and carry the
    # marker; elsewhere the script must still finish within its timeout with a clear no-event answer.
    from procaudit.verify import TEST_PROCESS_CREATION_EVENT, VerifyParams, judge, new_nonce

    nonce = new_nonce()
    result = live.run(TEST_PROCESS_CREATION_EVENT, VerifyParams(nonce=nonce, timeout_seconds=20), timeout=60)
    assert result.nonce == nonce and result.marker_process_id.startswith("0x")
    _status, reason, _detail, _latency = judge(result)
    if result.event is not None:
        assert result.event.new_process_name is not None
        assert result.event.new_process_name.lower().endswith("\\cmd.exe")
        if result.command_line_has_marker:
            assert f"/d /c rem procaudit-verify-{nonce}" in (result.event.command_line or "")
    else:
        assert reason == "no_event" and result.waited_milliseconds >= 20000
