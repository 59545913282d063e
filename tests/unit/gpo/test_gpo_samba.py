"""Samba's gp_parse parsers (system Python, python3-samba) read our files as the values we meant.

Samba is an independent implementation of [MS-GPREG], [MS-GPAC] and [MS-GPSB]: what it reads back is
not our own reading of our own output.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from gpo_strategies import typed_entries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SambaValidator, run_validator_on_file, samba_entry
from procaudit.gpo.polfile import PolEntry, decode_pol, encode_pol
from procaudit.gpo.render import AUDIT_CSV, GPTTMPL_INF, REGISTRY_POL, GpoIds, render_files, render_gpo_backup
from procaudit.gpo.settings import GpoSettings

IDS = GpoIds(gpo_guid=uuid.UUID(int=1), backup_id=uuid.UUID(int=2))
WHEN = datetime(2024, 5, 1, 12, 0, 0)
AUDIT_HEADER = [
    "Machine Name",
    "Policy Target",
    "Subcategory",
    "Subcategory GUID",
    "Inclusion Setting",
    "Exclusion Setting",
    "Setting Value",
]
FORCE_SUBCATEGORY_LINE = r"MACHINE\System\CurrentControlSet\Control\Lsa\SCENoApplyLegacyAuditPolicy=4,1"
INF_SECTIONS = [
    "Unicode",
    "Version",
    "System Access",
    "Kerberos Policy",
    "System Log",
    "Security Log",
    "Application Log",
    "Event Audit",
    "Registry Values",
    "Privilege Rights",
    "Service General Setting",
    "Registry Keys",
    "File Security",
    "Group Membership",
]


def files(**kwargs: object) -> dict[tuple[str, ...], bytes]:
    return render_files(GpoSettings.model_validate(kwargs), IDS, WHEN)


# -- registry.pol ----------------------------------------------------------------------------------------


@pytest.mark.samba
def test_samba_reads_our_registry_pol(samba: SambaValidator) -> None:
    parsed = samba.parse_pol(files()[REGISTRY_POL])
    assert (parsed["signature"], parsed["version"], parsed["num_entries"]) == ("PReg", 1, 1)
    assert parsed["entries"] == [
        {
            "key": r"Software\Microsoft\Windows\CurrentVersion\Policies\System\Audit",
            "value_name": "ProcessCreationIncludeCmdLine_Enabled",
            "type": 4,
            "size": 4,
            "data": 1,
        }
    ]
    assert parsed["repack_identical"] is True


@pytest.mark.samba
def test_samba_reads_the_log_size_entry(samba: SambaValidator) -> None:
    parsed = samba.parse_pol(files(security_log_max_kb=196608)[REGISTRY_POL])
    assert parsed["entries"][1] == {
        "key": r"Software\Policies\Microsoft\Windows\EventLog\Security",
        "value_name": "MaxSize",
        "type": 4,
        "size": 4,
        "data": 196608,
    }
    assert parsed["repack_identical"] is True


@pytest.mark.samba
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(typed_entries(), max_size=6))
def test_samba_and_we_write_the_same_bytes_and_read_each_other(samba: SambaValidator, entries: list[PolEntry]) -> None:
    ours = encode_pol(entries)
    theirs = samba.write_pol(entries)
    assert theirs == ours
    assert decode_pol(theirs) == entries
    parsed = samba.parse_pol(ours)
    assert parsed["entries"] == [samba_entry(entry) for entry in entries]
    assert parsed["repack_identical"] is True


@pytest.mark.samba
def test_we_read_unicode_names_samba_writes(samba: SambaValidator) -> None:
    # Outside the ABNF our writer keeps to, but Windows registry names can be any Unicode: the reader copes.
    entries = [
        PolEntry.sz("Software\\Prüfung\\日本", "Wert😀", "Grüße 😀"),
        PolEntry.dword("Software\\Ünïcode", "", 7),
        PolEntry.multi_sz("K", "multi", ["eins", "zwei😀"]),
    ]
    written = samba.write_pol(entries)
    assert decode_pol(written) == entries
    assert [entry.value for entry in decode_pol(written)] == ["Grüße 😀", 7, ["eins", "zwei😀"]]


# -- audit.csv ---------------------------------------------------------------------------------------------


@pytest.mark.samba
@pytest.mark.parametrize(
    ("include_failure", "text", "value"), [(False, "Success", "1"), (True, "Success and Failure", "3")]
)
def test_samba_reads_our_audit_csv(samba: SambaValidator, include_failure: bool, text: str, value: str) -> None:
    parsed = samba.parse_csv(files(include_failure=include_failure)[AUDIT_CSV])
    assert parsed == {
        "header": AUDIT_HEADER,
        "rows": [
            {
                "Machine Name": "",
                "Policy Target": "System",
                "Subcategory": "Audit Process Creation",
                "Subcategory GUID": "{0cce922b-69ae-11d9-bed3-505054503030}",
                "Inclusion Setting": text,
                "Exclusion Setting": "",
                "Setting Value": value,
            }
        ],
    }


def real_gpo_audit_csvs(shared: Path) -> list[Path]:
    found = sorted((shared / "data" / "windows" / "01_auditpol").glob("gpo_audit_*.csv"))
    assert found, "no real GPO audit.csv files in shared data"
    return found


def process_creation_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if row["Subcategory GUID"].lower() == "{0cce922b-69ae-11d9-bed3-505054503030}"]


@pytest.mark.samba
def test_our_audit_csv_parses_like_real_gpo_files_with_samba(samba: SambaValidator, shared_dir: Path) -> None:
    ours = samba.parse_csv(files()[AUDIT_CSV])
    for path in real_gpo_audit_csvs(shared_dir):
        real = samba.parse_csv(path.read_bytes())
        assert real["header"] == ours["header"], path.name
        assert process_creation_rows(real["rows"]) == ours["rows"], path.name


def test_our_audit_csv_parses_like_real_gpo_files_with_python_csv(shared_dir: Path) -> None:
    # The same comparison without Samba (runs wherever ../shared is present).
    def read(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]

    our_header, our_rows = read(files()[AUDIT_CSV])
    for path in real_gpo_audit_csvs(shared_dir):
        header, rows = read(path.read_bytes())
        assert header == our_header, path.name
        assert process_creation_rows(rows) == our_rows, path.name


# -- GptTmpl.inf ------------------------------------------------------------------------------------------


@pytest.mark.samba
@pytest.mark.parametrize("include_failure", [False, True])
def test_samba_reads_our_gpttmpl_inf(samba: SambaValidator, include_failure: bool) -> None:
    parsed = samba.parse_inf(files(include_failure=include_failure)[GPTTMPL_INF])
    sections = parsed["sections"]
    assert list(sections) == INF_SECTIONS
    assert sections["Registry Values"] == [FORCE_SUBCATEGORY_LINE]
    assert sections["Event Audit"] == []
    assert all(values == [] for name, values in sections.items() if name != "Registry Values")


# -- the validator's command-line form, on a rendered backup ----------------------------------------------


@pytest.mark.samba
def test_validator_command_line_reads_a_rendered_backup(samba: SambaValidator, tmp_path: Path) -> None:
    backup = render_gpo_backup(GpoSettings(security_log_max_kb=1048576), tmp_path / "out", ids=IDS, backup_time=WHEN)
    pol = run_validator_on_file("pol", backup.backup_dir.joinpath(*REGISTRY_POL))
    assert [(e["value_name"], e["data"]) for e in pol["entries"]] == [
        ("ProcessCreationIncludeCmdLine_Enabled", 1),
        ("MaxSize", 1048576),
    ]
    audit = run_validator_on_file("csv", backup.backup_dir.joinpath(*AUDIT_CSV))
    assert [row["Setting Value"] for row in audit["rows"]] == ["1"]
    inf = run_validator_on_file("inf", backup.backup_dir.joinpath(*GPTTMPL_INF))
    assert inf["sections"]["Registry Values"] == [FORCE_SUBCATEGORY_LINE]
