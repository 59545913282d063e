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
