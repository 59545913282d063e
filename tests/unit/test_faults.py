from __future__ import annotations

import pytest

from procaudit.errors import UserInputError
from procaudit.lab.faults import Fault, faults_for, parse_fault_rule


def test_fault_rules_match_globs_and_later_rules_replace_earlier_ones() -> None:
    rules = [parse_fault_rule(s) for s in ["*=slow:50", "lab-dc-*=down", "lab-dc-01=slow:200"]]
    assert faults_for("lab-ready-01", rules) == [Fault("slow", 50)]
    assert sorted(map(str, faults_for("lab-dc-01", rules))) == ["down", "slow:200"]


@pytest.mark.parametrize("spec", ["nohost", "=drop", "h=slow", "h=slow:x", "h=explode", "h=drop:1"])
def test_bad_fault_specs_are_user_errors(spec: str) -> None:
    with pytest.raises(UserInputError):
        parse_fault_rule(spec)
