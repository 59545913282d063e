"""Registry text views, on the two captures in shared/data/windows/05_registry_audit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.errors import ParseError
from procaudit.parsers.registry import parse_item_property_list, parse_reg_query

Capture = Callable[[str], Path]
VALUE = "ProcessCreationIncludeCmdLine_Enabled"


def test_reg_query_after_reg_add(windows_capture: Capture) -> None:
    text = windows_capture("05_registry_audit/reg_query_policies_system_audit_win10_1809.txt").read_text()
    (key,) = parse_reg_query(text)
    assert key.path == r"HKEY_LOCAL_MACHINE\software\microsoft\windows\currentversion\policies\system\audit"
    value = key.value(VALUE.lower())
    assert value is not None
    assert (value.name, value.type, value.data, value.as_int(), value.line) == (VALUE, "REG_DWORD", "0x1", 1, 7)
    assert list(key.values) == [VALUE]  # the `reg add` echo above is not a value


def test_get_itemproperty_list_keeps_the_authors_annotation_as_text(windows_capture: Capture) -> None:
    text = windows_capture(
        "05_registry_audit/get-itemproperty_policies_system_audit_fl_win11_lab_ANNOTATED.txt"
    ).read_text()
    key = parse_item_property_list(text)
    assert key.path == r"HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Policies\System\Audit"
    assert list(key.values) == [VALUE]
    value = key.value(VALUE)
    assert value is not None and value.type is None and value.line == 1
    # The capture's author appended " -> This is it right here."; that is not a DWORD and is not read as 1.
    assert value.data == "1 -> This is it right here." and value.as_int() is None


def test_clean_list_view_and_several_keys() -> None:
    listed = parse_item_property_list(
        "\n\nProcessCreationIncludeCmdLine_Enabled : 1\n"
        "PSPath                                : Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\X\n"
    )
    value = listed.value(VALUE)
    assert value is not None and value.as_int() == 1 and value.line == 3
    keys = parse_reg_query(
        "\nHKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Control\\Lsa\n"
        "    SCENoApplyLegacyAuditPolicy    REG_DWORD    0x0\n"
        '    Security Packages    REG_MULTI_SZ    ""\n\n'
        "HKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Control\\Lsa\\Audit\n"
        "    (Default)    REG_SZ\n"
    )
    assert [k.path for k in keys][1].endswith("\\Audit")
    force = keys[0].value("scenoapplylegacyauditpolicy")
    assert force is not None and force.as_int() == 0
    assert keys[0].values["Security Packages"].type == "REG_MULTI_SZ"
    default = keys[1].value("(Default)")
    assert default is not None and default.data == "" and default.as_int() is None


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (
            lambda: parse_reg_query("ERROR: The system was unable to find the specified registry key or value.\n"),
            "no HKEY_",
        ),
        (lambda: parse_reg_query("    X    REG_DWORD    0x1\nHKEY_LOCAL_MACHINE\\Y\n"), "before any HKEY_"),
        (
            lambda: parse_item_property_list(
                "Get-ItemProperty : Cannot find path 'HKLM:\\X' because it does not exist.\n"
                "    + FullyQualifiedErrorId : PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand\n"
            ),
            "no 'Name : Value' record with a PSPath",
        ),
    ],
)
def test_invalid_input(call: Callable[[], object], words: str) -> None:
    with pytest.raises(ParseError, match=words):
        call()
