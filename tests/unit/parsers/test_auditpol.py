"""auditpol /backup CSV and GPO audit.csv, tested on the real files in shared/data/windows/01_auditpol."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.errors import ParseError, ProcauditError
from procaudit.parsers.auditpol import (
    CATEGORY_GUIDS,
    LEGACY_CATEGORIES,
    PROCESS_CREATION_GUID,
    SUBCATEGORIES,
    category_subcategories,
    legacy_category_subcategories,
    parse_audit_csv,
    subcategory,
)

Capture = Callable[[str], Path]

BACKUP_FULL = "01_auditpol/auditpol_backup_simeononsecurity_DESKTOPTEMPLATE.csv"
BACKUP_VDI = "01_auditpol/auditpol_backup_vdi_1909_DESKTOP-5BRV63F.csv"
BACKUP_DC_CUT = "01_auditpol/auditpol_backup_DC_mdi_issue7_TRUNCATED.csv"
BACKUP_WIN2019_CUT = "01_auditpol/auditpol_backup_WIN2019_wazuh_pr14763_TRUNCATED.csv"
GPO_FILES = [
    "gpo_audit_dod_stig_windows10_ansiblefixes.csv",
    "gpo_audit_dod_stig_windows8.csv",
    "gpo_audit_dod_stig_ws2012r2_dc.csv",
    "gpo_audit_dod_stig_ws2012r2_ms.csv",
    "gpo_audit_dod_stig_ws2016_dc.csv",
    "gpo_audit_dod_stig_ws2016_ms.csv",
    "gpo_audit_msft_baseline_win10_1909_computer_ECA4D7B0.csv",
    "gpo_audit_msft_baseline_ws1909_dc_ABC66265.csv",
    "gpo_audit_nsa_shb_10.0.2_2016-09_4FD4A36B.csv",
    "gpo_audit_nsa_shb_10.1.0_2017-01_A2A38432.csv",
    "gpo_audit_nsa_shb_2016-02_AC662460.csv",
    "gpo_audit_nsa_shb_2016-03_AC662460.csv",
]
ALL_CSV = [BACKUP_FULL, BACKUP_VDI, BACKUP_DC_CUT, BACKUP_WIN2019_CUT] + [f"01_auditpol/{f}" for f in GPO_FILES]

CRED_VALIDATION = "{0CCE923F-69AE-11D9-BED3-505054503030}"
FILTERING_PLATFORM_CONNECTION = "{0CCE9226-69AE-11D9-BED3-505054503030}"


# --- the real files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("relpath", ALL_CSV)
def test_every_capture_parses_and_is_keyed_by_known_upper_case_guids(windows_capture: Capture, relpath: str) -> None:
    parsed = parse_audit_csv(windows_capture(relpath).read_bytes(), source=relpath)
    assert parsed.has_header
    assert parsed.subcategories, "no subcategory rows"
    for guid, row in parsed.subcategories.items():
        assert re.fullmatch(r"\{[0-9A-F-]{36}\}", guid)
        assert row.guid == guid
        assert guid in SUBCATEGORIES, f"{row.name} {guid} missing from the table"
        assert 0 <= row.setting_value <= 3
    assert parsed.truncated_at_line is None


def test_full_backup_has_all_59_subcategories_options_and_global_sacls(windows_capture: Capture) -> None:
    parsed = parse_audit_csv(windows_capture(BACKUP_FULL).read_bytes())
    assert parsed.machine_name == "DESKTOPTEMPLATE"
    assert len(parsed.subcategories) == 59
    assert parsed.missing_known() == []
    assert {row.setting_value for row in parsed.subcategories.values()} == {3}
    pc = parsed.process_creation
    assert pc is not None and pc.success and pc.failure and pc.name == "Process Creation" and pc.line == 37
    assert list(parsed.options) == [
        "CrashOnAuditFail",
        "FullPrivilegeAuditing",
        "AuditBaseObjects",
        "AuditBaseDirectories",
    ]
    assert parsed.options["CrashOnAuditFail"].enabled is False
    # The real quirk: enabled options carry Setting Value 0; the state is in the Inclusion Setting text.
    full_priv = parsed.options["FullPrivilegeAuditing"]
    assert (full_priv.inclusion_setting, full_priv.setting_value, full_priv.enabled) == ("Enabled", 0, True)
    assert list(parsed.global_sacls) == ["FileGlobalSacl", "RegistryGlobalSacl"]
    assert parsed.global_sacls["FileGlobalSacl"].setting_value == ""
    assert parsed.per_user == ()


def test_vdi_backup_shows_windows_defaults_and_process_creation_off(windows_capture: Capture) -> None:
    parsed = parse_audit_csv(windows_capture(BACKUP_VDI).read_bytes())
    assert parsed.machine_name == "DESKTOP-5BRV63F"
    assert parsed.setting(PROCESS_CREATION_GUID) == 0
    pc = parsed.process_creation
    assert pc is not None and not pc.success and not pc.failure
    counts = {v: sum(r.setting_value == v for r in parsed.subcategories.values()) for v in (0, 1, 3)}
    assert counts == {0: 47, 1: 8, 3: 4}
    assert parsed.setting("{0cce9212-69ae-11d9-bed3-505054503030}") == 3  # System Integrity, lower-case lookup
    assert all(option.enabled is False for option in parsed.options.values())


def test_truncated_dc_backup_parses_what_it_has(windows_capture: Capture) -> None:
    parsed = parse_audit_csv(windows_capture(BACKUP_DC_CUT).read_text(encoding="utf-8"))
    assert parsed.machine_name == "DC"
    assert len(parsed.subcategories) == 10
    assert parsed.process_creation is None and parsed.setting(PROCESS_CREATION_GUID) is None
    assert parsed.setting("{0CCE9213-69AE-11D9-BED3-505054503030}") == 0  # IPsec Driver
    assert parsed.setting("{0CCE921B-69AE-11D9-BED3-505054503030}") == 1  # Special Logon, last row
    assert len(parsed.missing_known()) == 49
    assert parsed.options == {}


def test_truncated_win2019_backup(windows_capture: Capture) -> None:
    parsed = parse_audit_csv(windows_capture(BACKUP_WIN2019_CUT).read_bytes())
    assert parsed.machine_name == "WIN2019"
    assert len(parsed.subcategories) == 8
    assert parsed.setting("{0CCE9243-69AE-11D9-BED3-505054503030}") == 3  # Network Policy Server


@pytest.mark.parametrize(
    ("name", "rows", "crlf", "extra"),
    [
        ("gpo_audit_nsa_shb_10.1.0_2017-01_A2A38432.csv", 21, True, ("{0CCE9231-69AE-11D9-BED3-505054503030}", 1)),
        ("gpo_audit_nsa_shb_2016-02_AC662460.csv", 20, False, ("{0CCE921D-69AE-11D9-BED3-505054503030}", 2)),
        ("gpo_audit_dod_stig_ws2012r2_dc.csv", 23, False, ("{0CCE923B-69AE-11D9-BED3-505054503030}", 3)),
        ("gpo_audit_msft_baseline_ws1909_dc_ABC66265.csv", 29, False, (CRED_VALIDATION, 2)),
        ("gpo_audit_msft_baseline_win10_1909_computer_ECA4D7B0.csv", 23, False, (CRED_VALIDATION, 3)),
    ],
)
def test_gpo_audit_csv(windows_capture: Capture, name: str, rows: int, crlf: bool, extra: tuple[str, int]) -> None:
    data = windows_capture(f"01_auditpol/{name}").read_bytes()
    assert (b"\r\n" in data) is crlf
    parsed = parse_audit_csv(data)
    assert parsed.machine_name is None
    assert len(parsed.subcategories) == rows
    pc = parsed.process_creation
    assert pc is not None and pc.setting_value == 1 and pc.name == "Audit Process Creation"
    assert pc.guid == PROCESS_CREATION_GUID  # written lower-case in the file
    assert parsed.setting(extra[0]) == extra[1]


def test_gpo_names_differ_from_auditpol_names_but_guids_match(windows_capture: Capture) -> None:
    gpo = parse_audit_csv(windows_capture("01_auditpol/gpo_audit_dod_stig_ws2016_dc.csv").read_bytes())
    backup = parse_audit_csv(windows_capture(BACKUP_FULL).read_bytes())
    pnp = "{0CCE9248-69AE-11D9-BED3-505054503030}"
    assert gpo.subcategories[pnp].name == "Audit PNP Activity"
    assert backup.subcategories[pnp].name == "Plug and Play Events"
    assert SUBCATEGORIES[pnp].name == "Plug and Play Events"


# --- the subcategory table is the one the captures show -------------------------------------------------


def test_table_is_derived_from_the_real_backup_and_english_category_tables(windows_capture: Capture) -> None:
    with windows_capture(BACKUP_FULL).open(encoding="utf-8", newline="") as handle:
        name_to_guid = {row[2]: row[3] for row in list(csv.reader(handle))[1:] if row[3]}
    derived: dict[str, tuple[str, str]] = {}
    for table in (
        "01_auditpol/auditpol_get_category_all_en_attackrange_dc_default.txt",
        "01_auditpol/auditpol_get_category_all_en_win10_1809.txt",
    ):
        category = ""
        for line in windows_capture(table).read_text(encoding="utf-8").splitlines():
            if line.startswith("  "):
                name = line[2:42].strip()
                derived[name_to_guid[name]] = (name, category)
            elif line and not line.startswith(("System audit policy", "Category/Subcategory", "C:\\")):
                category = line.strip()
    assert len(derived) == 59
    assert {guid: (s.name, s.category) for guid, s in SUBCATEGORIES.items()} == derived


def test_windows_11_access_rights_is_the_one_name_the_table_lacks(windows_capture: Capture) -> None:
    text = windows_capture("01_auditpol/auditpol_get_category_all_en_win11_lab_with_AccessRights.txt").read_text(
        encoding="utf-8"
    )
    names = {line[2:42].strip() for line in text.splitlines() if line.startswith("  ")}
    assert names - {s.name for s in SUBCATEGORIES.values()} == {"Access Rights"}


def test_category_guids_match_the_german_list_outputs(windows_capture: Capture) -> None:
    guid_re = re.compile(r"\{[0-9A-F-]{36}\}")
    categories = guid_re.findall(
        windows_capture("01_auditpol/auditpol_list_category_v_de.txt").read_text(encoding="utf-8")
    )
    assert sorted(categories) == sorted(CATEGORY_GUIDS.values())
    object_access = windows_capture("01_auditpol/auditpol_list_subcategory_objektzugriff_v_de.txt").read_text(
        encoding="utf-8"
    )
    lines = object_access.splitlines()
    category_line = next(line for line in lines if line.startswith("Objektzugriff"))
    assert guid_re.findall(category_line) == [CATEGORY_GUIDS["Object Access"]]
    sub_guids = [g for line in lines if line.startswith("  ") for g in guid_re.findall(line)]
    assert sub_guids == list(category_subcategories("Object Access"))


def test_legacy_process_tracking_covers_all_detailed_tracking_subcategories() -> None:
    covered = legacy_category_subcategories("AuditProcessTracking")
    assert PROCESS_CREATION_GUID in covered
    assert covered == legacy_category_subcategories("auditprocesstracking")
    assert {SUBCATEGORIES[g].name for g in covered} == {
        "Process Creation",
        "Process Termination",
        "DPAPI Activity",
        "RPC Events",
        "Plug and Play Events",
        "Token Right Adjusted Events",
    }
    assert legacy_category_subcategories("AuditNothing") == ()
    all_covered = [g for key in LEGACY_CATEGORIES for g in legacy_category_subcategories(key)]
    assert sorted(all_covered) == sorted(SUBCATEGORIES)


def test_subcategory_lookup_is_case_and_brace_insensitive() -> None:
    found = subcategory("0cce922b-69ae-11d9-bed3-505054503030")
    assert found is not None and found.category == "Detailed Tracking"
    assert found.category_guid == "{6997984C-797A-11D9-BED3-505054503030}"
    assert subcategory("not-a-guid") is None


# --- tolerance --------------------------------------------------------------------------------------------


def _german(windows_capture: Capture) -> str:
    """The real full backup with the names and Inclusion text a German host writes (from the de captures)."""
    text = windows_capture(BACKUP_FULL).read_text(encoding="utf-8")
    text = text.replace("Filtering Platform Connection", "Filterplattformverbindung")
    text = text.replace("Application Generated", "Anwendung wurde generiert.")
    text = text.replace("Filtering Platform Packet Drop", '"Filterplattform: Verworfene Pakete"')
    return text.replace("Success and Failure", "Erfolg und Fehler")


def test_localized_names_and_text_parse_by_guid(windows_capture: Capture) -> None:
    parsed = parse_audit_csv(_german(windows_capture))
    row = parsed.row(FILTERING_PLATFORM_CONNECTION)
    assert row is not None and row.name == "Filterplattformverbindung"
    assert row.inclusion_setting == "Erfolg und Fehler" and row.setting_value == 3
    dropped = parsed.row("{0CCE9225-69AE-11D9-BED3-505054503030}")
    assert dropped is not None and dropped.name == "Filterplattform: Verworfene Pakete"  # quoted field
    assert len(parsed.subcategories) == 59


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"),
        lambda t: t.replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n\r\n",
    ],
    ids=["utf8-bom", "utf16le-bom", "crlf-blank-tail"],
)
def test_encodings_and_line_endings(windows_capture: Capture, encode: Callable[[str], bytes]) -> None:
    parsed = parse_audit_csv(encode(_german(windows_capture)))
    assert len(parsed.subcategories) == 59
    assert parsed.setting(PROCESS_CREATION_GUID) == 3


def test_a_last_row_cut_mid_line_is_left_out_and_reported(windows_capture: Capture) -> None:
    text = windows_capture(BACKUP_DC_CUT).read_text(encoding="utf-8")
    cut = text[: text.rindex(",Success,,1")]  # "DC,System,Special Logon,{0CCE921B-...}" without its last fields
    parsed = parse_audit_csv(cut)
    assert parsed.truncated_at_line == 11
    assert len(parsed.subcategories) == 9
    assert parsed.setting("{0CCE921B-69AE-11D9-BED3-505054503030}") is None


def test_header_less_text_parses() -> None:
    parsed = parse_audit_csv(",System,Audit Process Creation,{0cce922b-69ae-11d9-bed3-505054503030},Success,,1\r\n")
    assert not parsed.has_header
    assert parsed.setting(PROCESS_CREATION_GUID) == 1


def test_per_user_rows_are_kept_apart() -> None:
    text = (
        "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n"
        "HOST,System,Process Creation,{0CCE922B-69AE-11D9-BED3-505054503030},Success,,1\n"
        "HOST,S-1-5-21-1-2-3-1001,Process Creation,{0CCE922B-69AE-11D9-BED3-505054503030},,,16\n"
    )
    parsed = parse_audit_csv(text)
    assert parsed.setting(PROCESS_CREATION_GUID) == 1
    assert [(r.policy_target, r.setting_value) for r in parsed.per_user] == [("S-1-5-21-1-2-3-1001", 16)]


# --- malformed input: a clear error with the line ----------------------------------------------------------

HEADER = "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n"
GOOD = "H,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success,,1\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (HEADER + GOOD + "H,System,Logoff,{0CCE9216-69AE-11D9-BED3-505054503030},Success\n" + GOOD, 3, "found 5"),
        (HEADER + "H,System,Logon,{0CCE9215-69AE},Success,,1\n", 2, "not a GUID"),
        (HEADER + "H,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success,,yes\n", 2, "not a number"),
        (HEADER + "H,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success,,\n", 2, "no Setting Value"),
        (HEADER + "H,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success,,9\n", 2, "not one of 0-4"),
        (HEADER + GOOD + GOOD, 3, "appears twice (first on line 2)"),
        (HEADER + 'H,System,"Logon"x,{0CCE9215-69AE-11D9-BED3-505054503030},Success,,1\n', 2, "not valid CSV"),
        (HEADER + "H,,Something,,,,\n", 2, "neither an Option"),
        (
            "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting\n\n"
            "H,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success,\n",
            1,
            "auditpol /get /r",
        ),
    ],
    ids=["short-row", "bad-guid", "bad-value", "empty-value", "value-range", "duplicate", "bad-quote", "odd", "get-r"],
)
def test_malformed_rows_raise_parse_error_with_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_audit_csv(text, source="audit.csv")
    assert isinstance(caught.value, ProcauditError)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"audit.csv, line {line}: ")


def test_undecodable_bytes_raise_parse_error() -> None:
    with pytest.raises(ParseError, match="cannot decode"):
        parse_audit_csv(b"Machine Name,\xff\xfe\xfa broken \xc3\x28")
