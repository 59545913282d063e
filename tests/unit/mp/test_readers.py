"""Event readers: every supported shape, the version rules, and damaged input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from procaudit.detections.prefilter import RawPrefilter
from procaudit.errors import EventFileError
from procaudit.events import ReadStats, read_events, readers


def test_xml_versions_and_empty_command_lines(windows_dir: Path) -> None:
    folder = windows_dir / "04_event_4688_xml"
    v1 = next(read_events(folder / "4688_v1_fs03vuln_with_cmdline_mdec.xml"))
    assert (v1.event_version, v1.CommandLine, v1.ParentProcessName) == (1, "net  user administrator", None)
    assert v1.host == "fs03vuln.offsec.lan" and v1.record_id == 1101625
    empty = next(read_events(folder / "4688_v1_WIN-77LTAPHIQ1R_empty_cmdline_evtxattacksamples.xml"))
    assert empty.CommandLine == ""
    v2 = next(read_events(folder / "4688_v2_VALKYRIE_with_cmdline_deepbluecli.xml"))
    assert v2.ParentProcessName == r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    assert v2.MandatoryLabel == "S-1-16-12288"
    thirteen = next(read_events(folder / "4688_v2_fs02_auditpol_clear_with_cmdline_mdec.xml"))
    assert thirteen.event_version == 2 and thirteen.ParentProcessName is None
    wef = next(read_events(folder / "4688_v2_wef_renderedtext_win10_windomain_openwec.xml"))
    assert wef.CommandLine == "" and wef.ParentProcessName == r"C:\Windows\System32\services.exe"


def test_self_closed_command_line_and_v0(tmp_path: Path) -> None:
    xml = (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        "<Provider Name='Microsoft-Windows-Security-Auditing'/><EventID>4688</EventID><Version>0</Version>"
        "<EventRecordID>7</EventRecordID><Computer>h</Computer></System><EventData>"
        "<Data Name='NewProcessName'>C:\\x.exe</Data><Data Name='CommandLine' />"
        "<Data Name='ParentProcessName'>C:\\p.exe</Data></EventData></Event>"
    )
    path = tmp_path / "e.xml"
    path.write_text(xml)
    event = next(read_events(path))
    # Version 0 carries neither CommandLine nor the v2 fields, whatever the document says.
    assert (event.event_version, event.CommandLine, event.ParentProcessName) == (0, None, None)


def test_event_viewer_copy_is_a_clear_error(windows_dir: Path) -> None:
    path = windows_dir / "04_event_4688_xml" / "4688_v2_msdocs_event_viewer_xml_view_WIN-GG82ULGC9GO.xml"
    with pytest.raises(EventFileError, match="4688_v2_msdocs"):
        list(read_events(path))


def test_sysmon_mapping(events_dir: Path) -> None:
    events = list(read_events(events_dir / "sysmon1" / "sysmon1_ftp_parent_cmd_calc.evtx"))
    child = next(e for e in events if e.ParentProcessName and e.ParentProcessName.endswith("ftp.exe"))
    assert child.origin == "sysmon" and child.event_version == 2
    assert child.NewProcessName == r"C:\Windows\System32\cmd.exe"
    assert (child.SubjectDomainName, child.SubjectUserName) == ("IEWIN7", "IEUser")
    assert child.NewProcessId is not None and child.NewProcessId.startswith("0x")
    assert child.MandatoryLabel in {"S-1-16-8192", "S-1-16-12288", "S-1-16-16384"}


def test_sigma_regression_json_and_evtx_agree(events_dir: Path) -> None:
    folder = events_dir / "sigma_regression"
    (from_json,) = read_events(folder / "sigma_reg_add_run_key_de587dce.json")
    (from_evtx,) = read_events(folder / "sigma_reg_add_run_key_de587dce.evtx")
    assert from_json.CommandLine == from_evtx.CommandLine and from_json.MandatoryLabel == "S-1-16-12288"


def test_jsonl_counts_and_skips_malformed_lines(events_dir: Path, tmp_path: Path) -> None:
    source = (events_dir / "otrf" / "otrf_empire_launcher_sct_regsvr32.proc.json").read_text().splitlines()
    lines = [*source[:5], "{not json", '"a string"', *source[5:]]
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    stats = ReadStats()
    events = list(read_events(path, stats))
    assert stats.skipped == 2 and stats.events == len(events) == 14 and stats.ignored == 4


def test_json_array_and_truncated_array(events_dir: Path, tmp_path: Path) -> None:
    docs = [
        json.loads(line) for line in (events_dir / "otrf" / "otrf_cmd_mshta_javascript_getobject_sct.proc.json").open()
    ]
    good = tmp_path / "a.json"
    good.write_text(json.dumps(docs, indent=2))
    assert len(list(read_events(good))) == 10
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps(docs)[:-200])
    with pytest.raises(EventFileError, match=r"b\.json"):
        list(read_events(bad))


def test_damaged_evtx_chunk_is_skipped_and_counted(events_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.evtx"
    shutil.copy(events_dir / "security4688" / "mdec_4688_tchopper_735_events.evtx", path)
    data = bytearray(path.read_bytes())
    data[4096 + 65536 : 4096 + 65536 + 8] = b"XXXXXXXX"  # second chunk's magic
    path.write_bytes(bytes(data))
    stats = ReadStats()
    events = list(read_events(path, stats))
    assert stats.skipped == 1 and 0 < len(events) < 735


@pytest.mark.parametrize(("limit", "gives_up"), [(0, True), (1, False)])
def test_damaged_records_in_a_row_past_the_limit_give_up_on_the_file(
    events_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, gives_up: bool
) -> None:
    path = tmp_path / "c.evtx"
    shutil.copy(events_dir / "security4688" / "mdec_4688_tchopper_735_events.evtx", path)
    data = bytearray(path.read_bytes())
    data[4096 + 65536 : 4096 + 65536 + 8] = b"XXXXXXXX"  # one damaged chunk: one error
    path.write_bytes(bytes(data))
    monkeypatch.setattr(readers, "MAX_CONSECUTIVE_ERRORS", limit)
    stats = ReadStats()
    no_rules = RawPrefilter([]).checks  # every record is settled by the filter: only counted
    if gives_up:
        with pytest.raises(EventFileError, match="too many damaged records in a row"):
            list(read_events(path, stats, raw_filters=no_rules))
    else:
        assert list(read_events(path, stats, raw_filters=no_rules)) == []
        assert stats.skipped == 1 and 0 < stats.events < 735 and stats.first_time is not None


@pytest.mark.parametrize("content", [b"", b"hello world", b"ElfFile\x00garbage", b"\xff\xfe<\x00E\x00"])
def test_unreadable_files_raise_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.evtx"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=r"bad\.evtx"):
        list(read_events(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EventFileError, match="nope"):
        list(read_events(tmp_path / "nope.evtx"))


@pytest.mark.parametrize("version", [0, 1, 2])
def test_make_event_keeps_exactly_the_fields_of_its_version(version: int) -> None:
    from procaudit.events.model import FIELD_MIN_VERSION, FIELDS, make_event

    event = make_event({name: f"v-{name}" for name in FIELDS}, event_version=version)
    for name in FIELDS:
        expected = f"v-{name}" if FIELD_MIN_VERSION[name] <= version else None
        assert event.field(name) == expected, name
    assert event.event_version == version


def test_jsonl_with_a_first_line_longer_than_the_old_4_kb_peek(events_dir: Path, tmp_path: Path) -> None:
    lines = (events_dir / "otrf" / "otrf_empire_launcher_sct_regsvr32.proc.json").read_text().splitlines()
    first = json.loads(lines[0])
    first["CommandLine"] = "x" * 20_000  # one long line, as an encoded PowerShell command gives
    path = tmp_path / "long.jsonl"
    # A damaged line too: JSON lines skips and counts it, where the JSON-document reader would give up on the file.
    path.write_text("\n".join([json.dumps(first), "{not json", *lines[1:]]) + "\n")
    stats = ReadStats()
    events = list(read_events(path, stats))
    assert stats.skipped == 1 and len(events) == 14


@pytest.mark.parametrize(
    ("content", "count"),
    [
        (b"\xef\xbb\xbf" + b" \r\n" * 5000 + b'{"a": 1}\n{"b": 2}\n', 0),  # white space beyond any fixed peek
        (b"\n" * 9000 + b"<Events></Events>", None),
        (b'{\n  "Event": {"System": {"EventID": 1}}\n}\n', 0),  # one pretty-printed object: a JSON document
    ],
)
def test_format_detection_reads_past_leading_white_space(tmp_path: Path, content: bytes, count: int | None) -> None:
    path = tmp_path / "e.txt"
    path.write_bytes(content)
    if count is None:
        with pytest.raises(EventFileError, match="no <Event> element"):
            list(read_events(path))
    else:
        assert len(list(read_events(path))) == count
