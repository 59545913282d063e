"""The check catalog: the issue's ten ids, complete metadata, one evaluator each, clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from procaudit.errors import ContentError
from procaudit.readiness.catalog import ORDER, load_catalog, load_check
from procaudit.readiness.evaluators import EVALUATORS

REQUIRED = {
    "audit_process_creation_success",
    "audit_force_subcategory_policy",
    "cmdline_inclusion_enabled",
    "os_supports_cmdline",
    "security_log_capacity",
    "security_log_retention_mode",
    "security_log_reader_exposure",
    "events_4688_with_cmdline_present",
    "scom_agent_healthy",
    "policy_source_consistent",
}


def test_catalog_has_the_required_checks_each_with_an_evaluator() -> None:
    catalog = load_catalog()
    ids = [c.id for c in catalog]
    assert set(ids) >= REQUIRED and set(ids) == set(EVALUATORS)
    assert ids[: len(ORDER)] == list(ORDER)
    assert len({c.short for c in catalog}) == len(catalog)
    for check in catalog:
        assert check.title and check.rationale and check.remediation.text, check.id
        assert check.references and all(r.startswith("https://") for r in check.references), check.id


def test_a_malformed_check_file_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "my_check.yaml"
    bad.write_text("id: my_check\ntitle: t\nshort: s\nseverity: huge\nrationale: r\nremediation: {text: x}\n")
    with pytest.raises(ContentError, match=r"my_check\.yaml: severity"):
        load_check(bad)
    bad.write_text("id: other_id\ntitle: t\nshort: s\nseverity: low\nrationale: r\nremediation: {text: x}\n")
    with pytest.raises(ContentError, match="must equal the file name"):
        load_check(bad)
    bad.write_text("id: [unclosed\n")
    with pytest.raises(ContentError, match="not valid YAML"):
        load_check(bad)
