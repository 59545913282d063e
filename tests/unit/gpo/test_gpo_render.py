"""render_gpo_backup: layout, encodings, XML, ids, output-folder safety and the template environment."""

from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PureWindowsPath

import jinja2
import pytest
from lxml import etree
from markupsafe import Markup

from procaudit.errors import UserInputError
from procaudit.gpo.polfile import PolEntry, RegType, decode_pol
from procaudit.gpo.render import (
    AUDIT_CSV,
    BACKUP_XML,
    BKUPINFO_XML,
    GPTTMPL_INF,
    REGISTRY_POL,
    BackupXmlView,
    BkupInfoView,
    GpoBackup,
    GpoIds,
    OutputDirError,
    _cdata,
    _csv_field,
    _inf_field,
    format_backup_time,
    machine_extension_guids,
    render_files,
    render_gpo_backup,
    template_environment,
)
from procaudit.gpo.settings import GpoSettings

GPO_NS = "http://www.microsoft.com/GroupPolicy/GPOOperations"
MANIFEST_NS = "http://www.microsoft.com/GroupPolicy/GPOOperations/Manifest"
BKP = "{" + GPO_NS + "}"
IDS = GpoIds(
    gpo_guid=uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    backup_id=uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
)
WHEN = datetime(2024, 5, 1, 12, 0, 0)
# The three CSE/tool pairs this GPO needs, sorted by CSE GUID (reference gpo_audit.md 1.5 and 1.6).
EXPECTED_EXTENSION_GUIDS = (
    "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]"
    "[{827D319E-6EAC-11D2-A4EA-00C04F79F83A}{803E14A0-B4FB-11D0-A0D0-00A0C90F574B}]"
    "[{F3CCC681-B74C-4060-9F26-CD84525DCA2A}{0F3F3735-573D-9804-99E4-AB2A69BA5FD4}]"
)


def render(tmp_path: Path, **kwargs: object) -> GpoBackup:
    return render_gpo_backup(GpoSettings.model_validate(kwargs), tmp_path / "out", ids=IDS, backup_time=WHEN)


def cdata_text(root: etree._Element, tag: str) -> str:
    element = root.find(f".//{tag}")
    assert element is not None, tag
    return element.text or ""


# -- layout ---------------------------------------------------------------------------------------------


def test_writes_the_backup_layout(tmp_path: Path) -> None:
    backup = render(tmp_path)
    backup_id = "{7C9E6679-7425-40DE-944B-E07FC1F90AE7}"
    assert backup.backup_id == backup_id
    assert backup.gpo_guid == "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}"
    assert backup.backup_root == tmp_path / "out"
    assert backup.backup_dir == tmp_path / "out" / backup_id
    written = sorted(str(p.relative_to(backup.backup_dir)) for p in backup.backup_dir.rglob("*") if p.is_file())
    assert written == sorted(
        [
            "Backup.xml",
            "bkupInfo.xml",
            "DomainSysvol/GPO/Machine/registry.pol",
            "DomainSysvol/GPO/Machine/microsoft/windows nt/Audit/audit.csv",
            "DomainSysvol/GPO/Machine/microsoft/windows nt/SecEdit/GptTmpl.inf",
        ]
    )
    assert sorted(backup.files) == sorted(p for p in backup.backup_dir.rglob("*") if p.is_file())
    assert [p.name for p in (tmp_path / "out").iterdir()] == [backup_id]  # no manifest.xml, no gpreport.xml
    for path in backup.files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_result_describes_the_gpo(tmp_path: Path) -> None:
    backup = render(tmp_path, display_name="Team's audit", include_failure=True, security_log_max_kb=1048576)
    assert backup.display_name == "Team's audit"
    assert backup.settings.include_failure is True
    assert backup.registry_entries == decode_pol(backup.backup_dir.joinpath(*REGISTRY_POL).read_bytes())
    summary = "\n".join(backup.summary)
    assert "Audit Process Creation = Success and Failure" in summary
    assert "Setting Value 3" in summary
    assert "4688" in summary
    assert "SCENoApplyLegacyAuditPolicy=1" in summary
    assert "ProcessCreationIncludeCmdLine_Enabled = 1" in summary
    assert "1048576 KB (1 GB)" in summary
    assert "Event Log Readers" in summary
    assert "New-GPLink" in summary
    command = backup.import_command
    assert command.startswith(f"Import-GPO -BackupId '{backup.backup_id}' ")
    assert "-TargetName 'Team''s audit'" in command  # PowerShell single-quote escaping


def test_summary_without_log_size_says_it_is_left_alone(tmp_path: Path) -> None:
    summary = "\n".join(render(tmp_path).summary)
    assert "Audit Process Creation = Success (" in summary
    assert "Security log size is left as it is" in summary
    assert "Specify the maximum log file size" not in summary


# -- registry.pol ----------------------------------------------------------------------------------------


def test_registry_pol_sets_command_line_and_optionally_max_size() -> None:
    plain = decode_pol(render_files(GpoSettings(), IDS, WHEN)[REGISTRY_POL])
    assert plain == [
        PolEntry(
            key=r"Software\Microsoft\Windows\CurrentVersion\Policies\System\Audit",
            value_name="ProcessCreationIncludeCmdLine_Enabled",
            type=RegType.REG_DWORD,
            data=b"\x01\x00\x00\x00",
        )
    ]
    sized = decode_pol(render_files(GpoSettings(security_log_max_kb=196608), IDS, WHEN)[REGISTRY_POL])
    assert sized[0] == plain[0]
    assert (sized[1].key, sized[1].value_name, sized[1].type, sized[1].value) == (
        r"Software\Policies\Microsoft\Windows\EventLog\Security",
        "MaxSize",
        RegType.REG_DWORD,
        196608,
    )


# -- GptTmpl.inf and audit.csv bytes -----------------------------------------------------------------------


@pytest.mark.parametrize("include_failure", [False, True])
def test_gpttmpl_inf_is_utf16le_with_bom_and_crlf(include_failure: bool) -> None:
    data = render_files(GpoSettings(include_failure=include_failure), IDS, WHEN)[GPTTMPL_INF]
    assert data[:2] == b"\xff\xfe"
    assert data[2:6] == "[U".encode("utf-16-le")
    text = data[2:].decode("utf-16-le")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "") and "\r" not in text.replace("\r\n", "")
    assert text.split("\r\n") == [
        "[Unicode]",
        "Unicode=yes",
        "[Version]",
        'signature="$CHICAGO$"',
        "Revision=1",
        "[Registry Values]",
        r"MACHINE\System\CurrentControlSet\Control\Lsa\SCENoApplyLegacyAuditPolicy=4,1",
        "",
    ]
    assert "[Event Audit]" not in text


@pytest.mark.parametrize(
    ("include_failure", "row"),
    [
        (False, b",System,Audit Process Creation,{0cce922b-69ae-11d9-bed3-505054503030},Success,,1\r\n"),
        (True, b",System,Audit Process Creation,{0cce922b-69ae-11d9-bed3-505054503030},Success and Failure,,3\r\n"),
    ],
)
def test_audit_csv_bytes(include_failure: bool, row: bytes) -> None:
    data = render_files(GpoSettings(include_failure=include_failure), IDS, WHEN)[AUDIT_CSV]
    header = (
        b"Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\r\n"
    )
    assert data == header + row  # UTF-8 (ASCII here), no BOM, CRLF


# -- XML ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "procaudit - Process Creation Auditing",
        "Überwachung ]]> Prozesse & <Kommandozeile>",
        "]]>",
        "a]]>b]]>c",
        "quote \" and apostrophe '",
        "日本語 😀",
    ],
)
def test_xml_is_well_formed_and_carries_any_name(name: str) -> None:
    files = render_files(GpoSettings(display_name=name), IDS, WHEN)
    backup_xml = etree.fromstring(files[BACKUP_XML])
    info = etree.fromstring(files[BKUPINFO_XML])
    assert cdata_text(backup_xml, f"{BKP}DisplayName") == name
    assert cdata_text(info, "{" + MANIFEST_NS + "}GPODisplayName") == name


def test_xml_files_start_like_gpmc_ones() -> None:
    files = render_files(GpoSettings(), IDS, WHEN)
    assert files[BACKUP_XML].startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert files[BKUPINFO_XML].startswith(b'<BackupInst xmlns="' + MANIFEST_NS.encode() + b'">')
    assert files[BKUPINFO_XML].endswith(b"</BackupInst>\r\n")
    assert files[BKUPINFO_XML].count(b"\r\n") == 1  # one line, as GPMC writes it
    assert b"\n" not in files[BACKUP_XML].replace(b"\r\n", b"")


def test_bkupinfo_ids_time_and_domain() -> None:
    info = etree.fromstring(render_files(GpoSettings(domain="corp.example.com"), IDS, WHEN)[BKUPINFO_XML])
    values = {etree.QName(child).localname: child.text or "" for child in info}
    assert values == {
        "GPOGuid": "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
        "GPODomain": "corp.example.com",
        "GPODomainGuid": "{00000000-0000-0000-0000-000000000000}",
        "GPODomainController": "",
        "BackupTime": "2024-05-01T12:00:00",
        "ID": "{7C9E6679-7425-40DE-944B-E07FC1F90AE7}",
        "Comment": "Generated by procaudit",
        "GPODisplayName": "procaudit - Process Creation Auditing",
    }


def test_backup_xml_core_settings() -> None:
    root = etree.fromstring(render_files(GpoSettings(), IDS, WHEN)[BACKUP_XML])
    core = root.find(f"{BKP}GroupPolicyObject/{BKP}GroupPolicyCoreSettings")
    assert core is not None
    values = {etree.QName(child).localname: child.text for child in core}
    assert values == {
        "ID": "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
        "Domain": "procaudit.invalid",
        "SecurityDescriptor": None,
        "DisplayName": "procaudit - Process Creation Auditing",
        "Options": "1",
        "UserVersionNumber": "0",
        "MachineVersionNumber": "65537",
        "MachineExtensionGuids": EXPECTED_EXTENSION_GUIDS,
        "UserExtensionGuids": None,
        "WMIFilter": None,
    }


def test_backup_xml_lists_exactly_the_files_written(tmp_path: Path) -> None:
    backup = render(tmp_path)
    root = etree.fromstring(backup.backup_dir.joinpath(*BACKUP_XML).read_bytes())
    machine = PureWindowsPath(r"DomainSysvol\GPO\Machine")
    listed_files, listed_dirs = set(), set()
    for obj in root.iter(f"{BKP}FSObjectFile", f"{BKP}FSObjectDir"):
        location = PureWindowsPath(obj.get(f"{BKP}Location", ""))
        # bkp:Path is the same place, relative to the GPO's Machine folder (%GPO_MACH_FSPATH%).
        assert obj.get(f"{BKP}Path") == "%GPO_MACH_FSPATH%\\" + str(location.relative_to(machine))
        on_disk = backup.backup_dir.joinpath(*location.parts)
        if etree.QName(obj).localname == "FSObjectFile":
            assert on_disk.is_file(), location
            listed_files.add(on_disk)
        else:
            assert on_disk.is_dir(), location
            listed_dirs.add(on_disk)
    payload = {backup.backup_dir.joinpath(*parts) for parts in (REGISTRY_POL, AUDIT_CSV, GPTTMPL_INF)}
    assert listed_files == payload
    # every folder between Machine and a payload file is listed, like GPMC does
    expected_dirs = {
        parent
        for path in payload
        for parent in path.parents
        if backup.backup_dir.joinpath(*machine.parts) in parent.parents
    }
    assert listed_dirs == expected_dirs
    security = root.find(f".//{BKP}GroupPolicyExtension[@{BKP}DescName='Security']/{BKP}FSObjectFile")
    assert security is not None
    assert security.get(f"{BKP}ReEvaluateFunction") == "SecurityValidateSettings"


# -- extension GUIDs, ids, time -----------------------------------------------------------------------------


def test_machine_extension_guids_are_sorted_pairs() -> None:
    assert machine_extension_guids() == EXPECTED_EXTENSION_GUIDS
    shuffled = {"{f3ccc681-b74c-4060-9f26-cd84525dca2a}": ["{B}", "{A}"], "{00000000-0000-0000-0000-000000000000}": []}
    assert (
        machine_extension_guids(shuffled)
        == "[{00000000-0000-0000-0000-000000000000}][{F3CCC681-B74C-4060-9F26-CD84525DCA2A}{A}{B}]"
    )


def test_derived_ids_depend_only_on_the_settings() -> None:
    first = GpoIds.derived(GpoSettings())
    assert first == GpoIds.derived(GpoSettings())
    assert first.gpo_guid != first.backup_id
    variants = [
        GpoSettings(display_name="other"),
        GpoSettings(domain="corp.example.com"),
        GpoSettings(include_failure=True),
        GpoSettings(security_log_max_kb=196608),
    ]
    assert len({first, *(GpoIds.derived(s) for s in variants)}) == 5


def test_fresh_ids_are_random() -> None:
    a, b = GpoIds.fresh(), GpoIds.fresh()
    assert len({a.gpo_guid, a.backup_id, b.gpo_guid, b.backup_id}) == 4


def test_default_ids_and_time(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=UTC)
    one = render_gpo_backup(GpoSettings(), tmp_path / "one")
    two = render_gpo_backup(GpoSettings(), tmp_path / "two")
    assert one.backup_id != two.backup_id
    assert before <= one.backup_time <= datetime.now(UTC)


def test_backup_time_format() -> None:
    assert format_backup_time(datetime(2016, 12, 9, 15, 16, 54, 999)) == "2016-12-09T15:16:54"
    aware = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_backup_time(aware) == "2024-05-01T12:00:00"


# -- the output folder ---------------------------------------------------------------------------------------


def test_refuses_a_non_empty_folder_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputDirError, match=r"is not empty \(keep.txt\).*--force") as caught:
        render_gpo_backup(GpoSettings(), out, ids=IDS, backup_time=WHEN)
    assert isinstance(caught.value, UserInputError)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_force_writes_beside_other_files_and_replaces_its_own(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_gpo_backup(GpoSettings(), out, ids=IDS, backup_time=WHEN)
    (out / "keep.txt").write_text("mine")
    backup = render_gpo_backup(GpoSettings(include_failure=True), out, ids=IDS, backup_time=WHEN, force=True)
    assert (out / "keep.txt").read_text() == "mine"
    assert b"Success and Failure,,3" in backup.backup_dir.joinpath(*AUDIT_CSV).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(["keep.txt", backup.backup_id])


def test_an_empty_existing_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert render(tmp_path).backup_dir.is_dir()


def test_refuses_a_file_as_output(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(OutputDirError, match="is not a directory"):
        render_gpo_backup(GpoSettings(), target, force=True)


# -- template environment -----------------------------------------------------------------------------------


def test_templates_use_strict_undefined() -> None:
    wrong_view = BkupInfoView(
        gpo_guid="g",
        domain="d",
        domain_guid="x",
        domain_controller="",
        backup_time="t",
        backup_id="i",
        comment="",
        display_name="n",
    )
    with pytest.raises(jinja2.UndefinedError, match="options"):
        template_environment().get_template("Backup.xml.j2").render(view=wrong_view)


def test_autoescape_is_on_for_xml_templates_only() -> None:
    env = template_environment()
    assert env.autoescape("Backup.xml.j2") is True  # type: ignore[operator]
    assert env.autoescape("bkupInfo.xml.j2") is True  # type: ignore[operator]
    assert env.autoescape("audit.csv.j2") is False  # type: ignore[operator]
    assert env.autoescape("GptTmpl.inf.j2") is False  # type: ignore[operator]


def test_view_models_reject_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        BackupXmlView.model_validate({"surprise": 1})


def test_cdata_filter() -> None:
    assert _cdata("a]]>b") == Markup("<![CDATA[a]]]]><![CDATA[>b]]>")
    assert _cdata(1) == Markup("<![CDATA[1]]>")
    with pytest.raises(ValueError, match=r"XML 1\.0 cannot carry"):
        _cdata("bell\x07")
    with pytest.raises(ValueError, match=r"XML 1\.0 cannot carry"):
        _cdata("\ud800")


def test_csv_and_inf_filters_refuse_what_would_break_the_format() -> None:
    assert _csv_field("Success and Failure") == "Success and Failure"
    for bad in ("a,b", 'a"b', "a\nb", "a\rb"):
        with pytest.raises(ValueError, match="CSV quoting"):
            _csv_field(bad)
    assert _inf_field("4,1") == "4,1"
    for bad in ("a\r\nb", "a\nb", "a\x00b"):
        with pytest.raises(ValueError, match="line break or NUL"):
            _inf_field(bad)
