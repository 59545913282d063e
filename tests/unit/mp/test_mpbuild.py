"""The built MP validates against the SCOM XSD and our semantic checks, and those checks catch real mistakes."""

from __future__ import annotations

import pytest

from procaudit.detections import mpbuild
from procaudit.detections.rules import CompiledRule
from procaudit.errors import UserInputError


def test_shipped_rules_build_and_validate(rules: list[CompiledRule]) -> None:
    result = mpbuild.build(rules, mp_id="Contoso.ProcessCreation", version="1.2.3.4")
    assert mpbuild.xsd_errors(result.xml) == [] and mpbuild.semantic_errors(result.xml) == []
    assert result.xml.count("<Rule ID=") == len(rules)
    blind = {s.rule_id: s.blind_on for s in result.rules}
    assert len(blind["FtpSpawnsProcess"]) == 2 and "Windows 8.1" in blind["FtpSpawnsProcess"][1]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda x: x.replace("<Category>Alert</Category>", "<Category>Security</Category>"), "Category"),
        (lambda x: x.replace("<Version>1.0.0.0</Version>", "<Version>1.0</Version>", 1), "Version"),
        (lambda x: x.replace('Rule ID="Procaudit.ProcessCreation.Detections.Rule.', 'Rule ID="Bad-', 1), "pattern"),
    ],
)
def test_xsd_catches(rules: list[CompiledRule], edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    xml = edit(mpbuild.build(rules).xml)
    assert any(expected in e for e in mpbuild.xsd_errors(xml))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda x: x.replace(
                '<StringResource ID="Procaudit.ProcessCreation.Detections.Rule.CertutilDownload.AlertMessage" />', ""
            ),
            "has no StringResource",
        ),
        (lambda x: x.replace('TypeID="Health!', 'TypeID="Nope!', 1), "alias 'Nope'"),
        (lambda x: x.replace("<Pattern>(?i)", "<Pattern>(?i)\\d", 1), "outside SCOM's regex subset"),
        (lambda x: x.replace("Params/Param[9]", "Params/Param[16]", 1), "Param[16]"),
    ],
)
def test_semantic_checks_catch(rules: list[CompiledRule], edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    xml = edit(mpbuild.build(rules).xml)
    assert any(expected in e for e in mpbuild.semantic_errors(xml)), mpbuild.semantic_errors(xml)


@pytest.mark.parametrize(("mp_id", "version"), [("Bad-Id", "1.0.0.0"), ("Good.Id", "1.0"), ("Good.Id", "1.0.0.x")])
def test_bad_id_or_version(rules: list[CompiledRule], mp_id: str, version: str) -> None:
    with pytest.raises(UserInputError):
        mpbuild.build(rules, mp_id=mp_id, version=version)


def test_description_braces_are_escaped(rules: list[CompiledRule]) -> None:
    view = mpbuild.rule_view("X", rules[0])
    assert mpbuild._format_text("a {b}") == "a {{b}}"
    assert view.alert_description.startswith("Computer: {0}")


@pytest.mark.parametrize(
    ("mp_id", "version"), [("Good.Id", "1.0.0.0\n"), ("Bad.Id\n", "1.0.0.0"), ("Bad-Id", "1.0.0.0")]
)
def test_build_refuses_ids_and_versions_scom_would_not_take(
    rules: list[CompiledRule], mp_id: str, version: str
) -> None:
    with pytest.raises(UserInputError):
        mpbuild.build(rules, mp_id=mp_id, version=version)
