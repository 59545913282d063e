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


@pytest.mark.parametrize("kind", ["tls-mismatch", "tls-expired", "tls-untrusted", "no-spn"])
def test_certificate_and_kerberos_faults_parse(kind: str) -> None:
    assert faults_for("lab-dc-01", [parse_fault_rule(f"lab-dc-*={kind}")]) == [Fault(kind)]  # type: ignore[arg-type]


def test_faults_that_need_another_kind_of_lab_are_user_errors() -> None:
    from procaudit.lab.runtime import Lab, lab_credentials

    with pytest.raises(UserInputError, match="needs the HTTPS transport"):
        Lab(["ready"], credentials=lab_credentials(), transport="http", faults=[parse_fault_rule("*=tls-expired")])
    with pytest.raises(UserInputError, match="needs a Kerberos lab"):
        Lab(["ready"], credentials=lab_credentials(), faults=[parse_fault_rule("*=no-spn")])
    with pytest.raises(UserInputError, match="certificate auth needs the HTTPS transport"):
        Lab(["ready"], credentials=lab_credentials(), transport="http", auth="certificate")
