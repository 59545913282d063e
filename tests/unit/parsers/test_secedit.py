"""Security template (secedit /export, GptTmpl.inf) parsing.

shared/data/windows holds no secedit or GptTmpl.inf capture. The template below is built from the format
facts in reference/gpo_audit.md §3 (MS-GPSB 2.2: UTF-16LE + BOM + CRLF; the `[Registry Values]` lines quoted
there from the NSA and Microsoft baseline files; the `[Security Log]` example from a public secinit.inf) and
from the section shapes of the real NSA GptTmpl.inf files (empty privilege lists, a `[Service General
Setting]` line without '='). The one real excerpt in shared/ (the reference's quoted GptTmpl block) is
parsed as well.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from procaudit.errors import ParseError
from procaudit.parsers.auditpol import PROCESS_CREATION_GUID, legacy_category_subcategories
from procaudit.parsers.secedit import REG_DWORD, REG_SZ, parse_security_template

TEMPLATE = r"""[Unicode]
Unicode=yes
[System Access]
MinimumPasswordAge = 1
NewGuestName = "Visitor"
[Event Audit]
AuditSystemEvents = 0
AuditLogonEvents = 3
AuditObjectAccess = 0
AuditPrivilegeUse = 2
AuditPolicyChange = 1
AuditAccountManage = 3
AuditProcessTracking = 1
AuditDSAccess = 0
AuditAccountLogon = 3
[Registry Values]
MACHINE\System\CurrentControlSet\Control\Lsa\RestrictRemoteSAM=1,"O:BAG:BAD:(A;;RC;;;BA)"
MACHINE\Software\Microsoft\Windows NT\CurrentVersion\Winlogon\ScRemoveOption=1,"1"
MACHINE\System\CurrentControlSet\Control\Lsa\SCENoApplyLegacyAuditPolicy=4,1
[Security Log]
MaximumLogSize = 16384
AuditLogRetentionPeriod = 1
RetentionDays = 30
; a comment
[Version]
signature="$CHICAGO$"
Revision=1
[Privilege Rights]
SeTcbPrivilege =
SeAuditPrivilege = *S-1-5-19,*S-1-5-20
[Service General Setting]
"AppIDSvc",2,""
"""


def _utf16_gpttmpl() -> bytes:
    return codecs.BOM_UTF16_LE + TEMPLATE.replace("\n", "\r\n").encode("utf-16-le")


@pytest.mark.parametrize(
    "data",
    [_utf16_gpttmpl(), TEMPLATE, TEMPLATE.encode("utf-8"), codecs.BOM_UTF8 + TEMPLATE.encode("utf-8")],
    ids=["utf16le-bom-crlf", "str", "utf8", "utf8-bom"],
)
def test_sections_and_typed_accessors(data: str | bytes) -> None:
    inf = parse_security_template(data)
    assert list(inf.sections) == [
        "Unicode",
        "System Access",
        "Event Audit",
        "Registry Values",
        "Security Log",
        "Version",
        "Privilege Rights",
        "Service General Setting",
    ]
    assert inf.get("system access", "newguestname") == '"Visitor"'
    assert inf.values("Version") == {"signature": '"$CHICAGO$"', "Revision": "1"}

    audit = inf.event_audit()
    assert len(audit) == 9
    assert audit["AuditProcessTracking"] == 1
    assert PROCESS_CREATION_GUID in legacy_category_subcategories(next(k for k in audit if k == "AuditProcessTracking"))

    force = inf.registry_value(r"System\CurrentControlSet\Control\Lsa\SCENoApplyLegacyAuditPolicy")
    assert force is not None and (force.type, force.data, force.as_int()) == (REG_DWORD, "1", 1)
    assert force.line == 19
    assert inf.force_subcategory == 1
    sam = inf.registry_value(r"machine\system\currentcontrolset\control\lsa\restrictremotesam")
    assert sam is not None and sam.type == REG_SZ and sam.as_text() == "O:BAG:BAD:(A;;RC;;;BA)" and sam.as_int() is None
    sc = inf.registry_values()[r"MACHINE\Software\Microsoft\Windows NT\CurrentVersion\Winlogon\ScRemoveOption"]
    assert sc.as_text() == "1" and sc.as_int() == 1

    assert inf.log_settings("Security") == {"MaximumLogSize": 16384, "AuditLogRetentionPeriod": 1, "RetentionDays": 30}
    assert inf.values("Privilege Rights") == {"SeTcbPrivilege": "", "SeAuditPrivilege": "*S-1-5-19,*S-1-5-20"}
    (service,) = inf.section("Service General Setting")
    assert service.key is None and service.value == '"AppIDSvc",2,""'


def test_template_without_audit_sections() -> None:
    inf = parse_security_template('[Unicode]\nUnicode=yes\n[Version]\nsignature="$CHICAGO$"\nRevision=1\n')
    assert inf.event_audit() == {}
    assert inf.registry_values() == {}
    assert inf.force_subcategory is None
    assert inf.log_settings() == {}
    assert not inf.has_section("Event Audit")


def test_force_subcategory_disabled() -> None:
    inf = parse_security_template(
        "[Registry Values]\r\nMACHINE\\System\\CurrentControlSet\\Control\\Lsa\\SCENoApplyLegacyAuditPolicy=4,0\r\n"
    )
    assert inf.force_subcategory == 0


def test_the_gpttmpl_excerpt_quoted_in_the_reference(shared_dir: Path) -> None:
    text = (shared_dir / "reference" / "gpo_audit.md").read_text(encoding="utf-8")
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    block = next(b for b in blocks if b.startswith("[Unicode]") and "SCENoApplyLegacyAuditPolicy=4,1" in b)
    inf = parse_security_template(codecs.BOM_UTF16_LE + block.replace("\n", "\r\n").encode("utf-16-le"))
    assert inf.force_subcategory == 1
    assert inf.get("Version", "signature") == '"$CHICAGO$"'


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("Unicode=yes\n[Version]\n", 1, "before the first [section]"),
        ("[Version\nRevision=1\n", 1, "not closed"),
        ("[Event Audit]\nAuditLogonEvents = 3\nAuditProcessTracking = 5\n", 3, "is not 0-3"),
        ("[Event Audit]\nAuditProcessTracking\n", 2, "has no '='"),
        ("[Registry Values]\nMACHINE\\System\\X=abc\n", 2, "is not <type>,<data>"),
        ("[Security Log]\nMaximumLogSize = big\n", 2, "is not a number"),
    ],
)
def test_malformed_templates(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        inf = parse_security_template(text, source="GptTmpl.inf")
        inf.event_audit()
        inf.registry_values()
        inf.log_settings()
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"GptTmpl.inf, line {line}: ")
