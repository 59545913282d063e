"""The rollout plan: invariants over random estates (hypothesis), and the rules one case at a time."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procaudit.errors import UserInputError
from procaudit.estimate.report import EstimateHost
from procaudit.rollout import Plan, PlanSettings, build_plan, canary_count

from .strategies import estates, host, report_of

plan_settings = st.builds(
    PlanSettings,
    canary=st.one_of(
        st.integers(min_value=1, max_value=12).map(str),
        st.integers(min_value=1, max_value=100).map(lambda p: f"{p}%"),
    ),
    max_events_per_sec=st.floats(min_value=0.05, max_value=30, allow_nan=False),
    max_hosts=st.integers(min_value=1, max_value=12),
    soak_seconds=st.sampled_from([0.0, 60.0, 1800.0]),
    max_fail_percent=st.floats(min_value=0, max_value=100, allow_nan=False),
    busy_events_per_day=st.floats(min_value=1000, max_value=100_000, allow_nan=False),
)


def make_plan(hosts: list[EstimateHost], config: PlanSettings, selected: list[tuple[str, str]] | None = None) -> Plan:
    chosen = selected if selected is not None else [(h.host, h.group) for h in hosts]
    return build_plan(report_of(hosts), chosen, config, estimate_sha256="0" * 64)


@settings(max_examples=300, deadline=None)
@given(hosts=estates(), config=plan_settings, seed=st.integers())
def test_plan_invariants(hosts: list[EstimateHost], config: PlanSettings, seed: int) -> None:
    plan = make_plan(hosts, config)
    names = sorted(h.host for h in hosts)

    # every host in exactly one wave, and the host list agrees with the waves
    in_waves = [name for wave in plan.waves for name in wave.hosts]
    assert sorted(in_waves) == names
    assert {h.host: h.wave for h in plan.hosts} == {n: w.index for w in plan.waves for n in w.hosts}
    assert [w.index for w in plan.waves] == list(range(1, len(plan.waves) + 1))

    # canary first, and only first
    assert plan.waves[0].kind == "canary" and plan.waves[0].name == "canary"
    assert all(w.kind != "canary" for w in plan.waves[1:])
    assert (
        1
        <= plan.canary_hosts
        == len(plan.waves[0].hosts)
        <= min(config.max_hosts, canary_count(config.canary, len(hosts)))
    )

    # caps: hosts always; rate unless one host alone is above it (then it is alone and flagged)
    peak = {h.host: (h.estimate.events_per_sec_peak if h.estimate else 0.0) for h in hosts}
    for wave in plan.waves:
        assert 1 <= len(wave.hosts) <= config.max_hosts
        total = sum(peak[n] for n in wave.hosts)
        assert wave.added_events_per_sec_peak == pytest.approx(total, abs=1e-3)
        if wave.over_rate_cap:
            assert len(wave.hosts) == 1 and total > config.max_events_per_sec
        else:
            assert total <= config.max_events_per_sec * (1 + 1e-6) + 1e-3
        assert wave.soak_seconds == config.soak_seconds and wave.max_fail_percent == config.max_fail_percent

    # kinds in order: canary, standard, busy, dc, unknown; unknown volume only in unknown waves (or a lone canary)
    order = ["canary", "standard", "busy", "dc", "unknown"]
    kinds = [order.index(w.kind) for w in plan.waves]
    assert kinds == sorted(kinds)
    for wave in plan.waves[1:]:
        assert bool(wave.volume_unknown) == (wave.kind == "unknown")
        assert (wave.kind == "dc") == bool(wave.dcs) == (len(wave.dcs) == len(wave.hosts))

    # log size changes are the estimate's, each exactly once, in its host's wave
    wanted = {h.host: h.estimate.max_size_change for h in hosts if h.estimate and h.estimate.max_size_change}
    changes = {c.host: (c.requested_max_size, w.index) for w in plan.waves for c in w.log_size_changes}
    assert {n: size for n, (size, _) in changes.items()} == wanted
    assert all(plan.hosts[[h.host for h in plan.hosts].index(n)].wave == index for n, (_, index) in changes.items())

    # same input, in any order, gives the same plan, byte for byte
    shuffled = list(hosts)
    random.Random(seed).shuffle(shuffled)
    assert make_plan(shuffled, config).to_json() == plan.to_json()


@settings(max_examples=100, deadline=None)
@given(hosts=estates(), config=plan_settings)
def test_canary_avoids_dcs_busy_and_unknown_hosts_while_others_exist(
    hosts: list[EstimateHost], config: PlanSettings
) -> None:
    plan = make_plan(hosts, config)
    canary = [h for h in plan.hosts if h.wave == 1]
    standard = [
        h
        for h in plan.hosts
        if h.volume_known and not h.dc and not h.busy and (h.events_per_sec_peak or 0) <= config.max_events_per_sec
    ]
    if standard:
        assert all(h.volume_known and not h.dc and not h.busy for h in canary)


def test_waves_ramp_up_and_call_out_dcs_and_busy_hosts() -> None:
    hosts = [host(f"srv{i:02d}", "servers", per_day=1000 * (i + 1)) for i in range(7)]
    hosts += [host("dc01", "dcs", "dc", 8000), host("dc02", "dcs", "dc", 9000), host("rds01", "rds", "rds", 60000)]
    hosts += [host("lost01", "servers", status="ERROR")]
    plan = make_plan(hosts, PlanSettings(canary="1", max_events_per_sec=0.5, max_hosts=3))
    kinds = [w.kind for w in plan.waves]
    assert kinds == ["canary", "standard", "standard", "busy", "dc", "unknown"]
    canary = plan.waves[0]
    assert canary.hosts == ["srv03"]  # the servers' median volume (4,000/day)
    standard = [w for w in plan.waves if w.kind == "standard"]
    peaks = [w.added_events_per_sec_peak for w in standard]
    assert peaks == sorted(peaks)  # quiet hosts first
    busy = next(w for w in plan.waves if w.kind == "busy")
    assert busy.busy == ["rds01"] and busy.over_rate_cap and "wave of its own" in " ".join(busy.notes)
    dc = next(w for w in plan.waves if w.kind == "dc")
    assert dc.dcs == ["dc01", "dc02"] and any("domain controller" in n for n in dc.notes)
    unknown = plan.waves[-1]
    assert unknown.volume_unknown == ["lost01"] and unknown.added_events_per_sec_peak == 0
    assert plan.totals.volume_unknown == 1 and any("unknown volume" in n for n in plan.notes)
    assert plan.waves[-1].cumulative_events_per_sec_peak == pytest.approx(plan.totals.events_per_sec_peak, abs=1e-3)


def test_hosts_missing_from_the_estimate_are_planned_last_and_extra_ones_ignored() -> None:
    hosts = [host("a", "web"), host("b", "web"), host("gone", "web")]
    plan = make_plan(hosts, PlanSettings(), selected=[("a", "web"), ("b", "web"), ("new", "web")])
    by_name = {h.host: h for h in plan.hosts}
    assert set(by_name) == {"a", "b", "new"}
    assert by_name["new"].estimate_status == "MISSING" and by_name["new"].wave == len(plan.waves)
    assert any("not in the selected inventory" in n for n in plan.notes)


def test_canary_prefers_hosts_not_yet_auditing() -> None:
    hosts = [host("a", "web", per_day=3000, audited=True), host("b", "web", per_day=9000)]
    plan = make_plan(hosts, PlanSettings(canary="1"))
    assert plan.waves[0].hosts == ["b"]


def test_canary_round_robins_over_groups() -> None:
    hosts = [host(f"{g}{i}", g, per_day=1000 + 10 * i) for g in ("web", "sql", "files") for i in range(4)]
    plan = make_plan(hosts, PlanSettings(canary="25%", max_events_per_sec=100))
    assert len(plan.waves[0].hosts) == 3
    assert {h[:-1] for h in plan.waves[0].hosts} == {"web", "sql", "files"}


@pytest.mark.parametrize(
    ("spec", "planned", "count"),
    [("1", 10, 1), ("3", 2, 2), ("10%", 45, 5), ("1%", 3, 1), ("100%", 7, 7), ("12.5%", 8, 1)],
)
def test_canary_count(spec: str, planned: int, count: int) -> None:
    assert canary_count(spec, planned) == count


@pytest.mark.parametrize("spec", ["0", "-1", "1.5", "0%", "101%", "abc", "", "5 %%"])
def test_bad_canary_is_a_user_error(spec: str) -> None:
    with pytest.raises(UserInputError, match="--canary"):
        canary_count(spec, 10)


@pytest.mark.parametrize(
    ("hosts", "failed", "percent", "stop"),
    [(10, 0, 0, False), (10, 1, 0, True), (10, 1, 10, False), (10, 2, 10, True), (3, 1, 33.3, True), (3, 1, 34, False)],
)
def test_a_wave_stops_only_when_failures_exceed_the_threshold(
    hosts: int, failed: int, percent: float, stop: bool
) -> None:
    estate = [host(f"h{i}", "web", per_day=10) for i in range(hosts)]
    plan = make_plan(estate, PlanSettings(canary=str(hosts), max_fail_percent=percent, max_events_per_sec=100))
    assert plan.waves[0].should_stop(failed) is stop
