"""RSoP and GPMC report XML, on every file in shared/data/windows/02_gpresult_xml."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.errors import ParseError
from procaudit.parsers.auditpol import PROCESS_CREATION_GUID
from procaudit.parsers.gpresult import parse_policy_xml

Capture = Callable[[str], Path]
D = "02_gpresult_xml/"
NSA = D + "gporeport_nsa_shb_windows10_computer_A2A38432.utf16le.xml"
MSFT = D + "gporeport_msft_baseline_win10_1909_computer_ECA4D7B0.utf16le.xml"
FRAGMENT = D + "gpresult_rsop_fragment_auditsetting_edxi_baselinecheck.xml"
RSOP_DC = D + "gpresult_x_rsop_full_dc1_testdomain_2019_sergueik.xml"

NSA_GPO = "{356FB116-26CD-4FBF-830B-6D736B802FD7}"
FILE_SHARE = "{0CCE9224-69AE-11D9-BED3-505054503030}"


def test_nsa_gpo_report(windows_capture: Capture) -> None:
    data = windows_capture(NSA).read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE)
    sources = parse_policy_xml(data, source=NSA)
    assert (sources.kind, sources.repaired) == ("gpo_report", False)
    assert sources.gpo_names == {NSA_GPO: "DoD Windows 10 STIG - Computer (SHB v10.1.0)"}
    assert len(sources.audit_settings) == 21

    pc = sources.process_creation()
    assert pc is not None
    assert (pc.setting_value, pc.subcategory_name, pc.policy_target) == (1, "Audit Process Creation", "System")
    assert (pc.gpo.identifier, pc.gpo.domain, pc.gpo.name, pc.precedence) == (
        NSA_GPO,
        "idl.local",
        "DoD Windows 10 STIG - Computer (SHB v10.1.0)",
        None,
    )
    assert pc.line == 838

    cmdline = sources.cmdline_setting()
    assert cmdline is not None and (cmdline.enabled, cmdline.via) == (True, "admx_policy")
    assert cmdline.gpo.identifier == NSA_GPO

    force = sources.force_subcategory()
    assert force is not None and force.setting_number == 1 and force.enabled is True and force.line == 625
    assert force.display_name is not None and force.display_name.startswith("Audit: Force audit policy subcategory")

    assert sources.legacy_audit_settings() == [] and sources.legacy_process_tracking() is None
    size = sources.security_log_max_size()
    assert size is not None and (size.max_size_kb, size.via) == (196608, "admx_policy")
    assert len(sources.registry_policies) == 73 and len(sources.security_options) == 45
    assert sources.security_log_retention() is None


def test_msft_baseline_report_has_no_cmdline_policy(windows_capture: Capture) -> None:
    sources = parse_policy_xml(windows_capture(MSFT).read_bytes())
    assert sources.gpo_names == {"{2F9159A7-CDD4-4891-BCBB-79232B2778BF}": "MSFT Windows 10 1909 - Computer"}
    assert len(sources.audit_settings) == 23
    pc = sources.process_creation()
    assert pc is not None and pc.setting_value == 1
    cred = sources.audit_subcategory("{0cce923f-69ae-11d9-bed3-505054503030}")
    assert cred is not None and cred.setting_value == 3
    # The Microsoft 1909 baseline does not set "Include command line..." (reference/gpo_audit.md 5.4).
    assert sources.cmdline_setting() is None
    force = sources.force_subcategory()
    assert force is not None and force.enabled is True
    size = sources.security_log_max_size()
    assert size is not None and size.max_size_kb == 196608


def test_rsop_fragment_without_root_is_repaired(windows_capture: Capture) -> None:
    text = windows_capture(FRAGMENT).read_text(encoding="utf-8")
    assert "</Extension>" not in text and "xmlns:xsi" not in text
    sources = parse_policy_xml(text)
    assert (sources.kind, sources.repaired) == ("fragment", True)
    setting = sources.audit_subcategory(FILE_SHARE)
    assert setting is not None
    assert (setting.setting_value, setting.precedence, setting.subcategory_name) == (3, 1, "Audit File Share")
    assert (setting.gpo.identifier, setting.gpo.domain, setting.gpo.name) == (
        "{A70D46E4-33C8-480F-B946-C857F880CA25}",
        "dir.saicgmac.com",
        None,
    )
    assert sources.process_creation() is None


def test_full_dc_rsop(windows_capture: Capture) -> None:
    data = windows_capture(RSOP_DC).read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="utf-16"?>')  # declared utf-16, stored as UTF-8
    sources = parse_policy_xml(data)
    assert (sources.kind, sources.repaired) == ("rsop", False)
    assert sources.gpo_names == {
        "LocalGPO": "Local Group Policy",
        "{6AC1786C-016F-11D2-945F-00C04FB984F9}": "Default Domain Controllers Policy",  # "fB" in the file
        "{31B2F340-016D-11D2-945F-00C04FB984F9}": "Default Domain Policy",
        "{8B7EF719-3FFF-437A-B318-E77A0ACB8FD9}": "Firewall Config",
    }
    assert sources.audit_settings == ()
    assert sources.process_creation() is None
    assert sources.cmdline_setting() is None
    assert sources.force_subcategory() is None
    assert sources.legacy_audit_settings() == []
    ldap = next(o for o in sources.security_options if o.key_name and o.key_name.endswith("LDAPServerIntegrity"))
    assert (ldap.setting_number, ldap.precedence, ldap.gpo.name) == (1, 1, "Default Domain Controllers Policy")
    assert ldap.line == 1120
    nolm = next(o for o in sources.security_options if o.key_name and o.key_name.endswith("NoLMHash"))
    assert nolm.gpo.name == "Default Domain Policy"
    assert [o.system_access_policy_name for o in sources.security_options if o.key_name is None] == [
        "ForceLogoffWhenHourExpire",
        "LSAAnonymousNameLookup",
    ]
    (policy,) = sources.registry_policies
    assert (policy.name, policy.state, policy.gpo.name, policy.line) == (
        "Windows Firewall: Protect all network connections",
        "Enabled",
        "Firewall Config",
        1300,
    )
    assert [v.key_path for v in sources.registry_values] == [
        r"SOFTWARE\Policies\Microsoft\WindowsFirewall\DomainProfile",
        r"SOFTWARE\Policies\Microsoft\WindowsFirewall\PrivateProfile",
        r"SOFTWARE\Policies\Microsoft\WindowsFirewall",
        r"SOFTWARE\Policies\Microsoft\WindowsFirewall\PublicProfile",
    ]
    assert all(v.value_name is None and v.adm_setting is False for v in sources.registry_values)


# A trimmed RSoP as a probe may send it: the computer half's GPO list and the relevant ExtensionData only.
# Element shapes as in the real RSoP and fragment above; Audit and RegistrySetting/Value as public GPO-report
# readers match them. Prefixes differ from the captures on purpose (z7, r2, s9).
_GPO = (
    '<GPO xmlns="http://www.microsoft.com/GroupPolicy/Settings/Base">'
    '<Identifier xmlns="http://www.microsoft.com/GroupPolicy/Types">{guid}</Identifier>'
    '<Domain xmlns="http://www.microsoft.com/GroupPolicy/Types">corp.example</Domain></GPO>'
    '<Precedence xmlns="http://www.microsoft.com/GroupPolicy/Settings/Base">{precedence}</Precedence>'
)
AUDIT_GPO = "{11111111-2222-3333-4444-555555555555}"
BASELINE_GPO = "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}"
TRIMMED = f"""<?xml version="1.0" encoding="utf-16"?>
<Rsop xmlns="http://www.microsoft.com/GroupPolicy/Rsop" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <UserResults>
  <ExtensionData>
   <Extension xmlns:a="http://www.microsoft.com/GroupPolicy/Settings/Auditing" xsi:type="a:AuditSettings"
       xmlns="http://www.microsoft.com/GroupPolicy/Settings">
    <a:AuditSetting>{_GPO.format(guid=AUDIT_GPO, precedence=1)}
     <a:SubcategoryGuid>{{0cce922b-69ae-11d9-bed3-505054503030}}</a:SubcategoryGuid><a:SettingValue>2</a:SettingValue>
    </a:AuditSetting>
   </Extension>
  </ExtensionData>
 </UserResults>
 <ComputerResults>
  <GPO><Name>Process Auditing</Name><Path><Identifier xmlns="http://www.microsoft.com/GroupPolicy/Types">{AUDIT_GPO.lower()}</Identifier></Path></GPO>
  <GPO><Name>Baseline</Name><Path><Identifier xmlns="http://www.microsoft.com/GroupPolicy/Types">{BASELINE_GPO}</Identifier></Path></GPO>
  <ExtensionData>
   <Extension xmlns:z7="http://www.microsoft.com/GroupPolicy/Settings/Auditing" xsi:type="z7:AuditSettings"
       xmlns="http://www.microsoft.com/GroupPolicy/Settings">
    <z7:AuditSetting>{_GPO.format(guid=BASELINE_GPO, precedence=2)}
     <z7:PolicyTarget>System</z7:PolicyTarget><z7:SubcategoryName>Prozesserstellung überwachen</z7:SubcategoryName>
     <z7:SubcategoryGuid>{{0cce922b-69ae-11d9-bed3-505054503030}}</z7:SubcategoryGuid><z7:SettingValue>0</z7:SettingValue>
    </z7:AuditSetting>
    <z7:AuditSetting>{_GPO.format(guid=AUDIT_GPO, precedence=1)}
     <z7:PolicyTarget>System</z7:PolicyTarget><z7:SubcategoryName>Prozesserstellung überwachen</z7:SubcategoryName>
     <z7:SubcategoryGuid>{{0cce922b-69ae-11d9-bed3-505054503030}}</z7:SubcategoryGuid><z7:SettingValue>3</z7:SettingValue>
    </z7:AuditSetting>
   </Extension>
  </ExtensionData>
  <ExtensionData>
   <Extension xmlns:r2="http://www.microsoft.com/GroupPolicy/Settings/Registry" xsi:type="r2:RegistrySettings"
       xmlns="http://www.microsoft.com/GroupPolicy/Settings">
    <r2:Policy>{_GPO.format(guid=AUDIT_GPO, precedence=1)}
     <r2:Name>Prozessbefehlszeile in Ereignisse zur Prozesserstellung einschließen</r2:Name>
     <r2:State>Aktiviert</r2:State>
    </r2:Policy>
    <r2:RegistrySetting>{_GPO.format(guid=AUDIT_GPO, precedence=1)}
     <r2:KeyPath>Software\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\Audit</r2:KeyPath>
     <r2:AdmSetting>false</r2:AdmSetting>
     <r2:Value><r2:Name>ProcessCreationIncludeCmdLine_Enabled</r2:Name><r2:Number>1</r2:Number></r2:Value>
    </r2:RegistrySetting>
    <r2:RegistrySetting>{_GPO.format(guid=BASELINE_GPO, precedence=1)}
     <r2:KeyPath>Software\\Policies\\Microsoft\\Windows\\EventLog\\Security</r2:KeyPath>
     <r2:Value><r2:Name>MaxSize</r2:Name><r2:Number>1024000</r2:Number></r2:Value>
    </r2:RegistrySetting>
   </Extension>
  </ExtensionData>
  <ExtensionData>
   <Extension xmlns:s9="http://www.microsoft.com/GroupPolicy/Settings/Security" xsi:type="s9:SecuritySettings"
       xmlns="http://www.microsoft.com/GroupPolicy/Settings">
    <s9:Audit>{_GPO.format(guid=BASELINE_GPO, precedence=1)}
     <s9:Name>AuditProcessTracking</s9:Name><s9:SuccessAttempts>false</s9:SuccessAttempts>
     <s9:FailureAttempts>false</s9:FailureAttempts>
    </s9:Audit>
    <s9:Audit>{_GPO.format(guid=BASELINE_GPO, precedence=1)}
     <s9:Name>AuditLogonEvents</s9:Name><s9:SuccessAttempts>true</s9:SuccessAttempts>
     <s9:FailureAttempts>true</s9:FailureAttempts>
    </s9:Audit>
    <s9:SecurityOptions>{_GPO.format(guid=BASELINE_GPO, precedence=1)}
     <s9:KeyName>MACHINE\\System\\CurrentControlSet\\Control\\Lsa\\SCENoApplyLegacyAuditPolicy</s9:KeyName>
     <s9:SettingNumber>0</s9:SettingNumber>
    </s9:SecurityOptions>
   </Extension>
  </ExtensionData>
 </ComputerResults>
</Rsop>
"""


@pytest.mark.parametrize(
    "data",
    [TRIMMED, codecs.BOM_UTF16_LE + TRIMMED.encode("utf-16-le"), TRIMMED.encode("utf-8")],
    ids=["str", "utf16le-bom", "utf8-declared-utf16"],
)
def test_precedence_legacy_audit_and_locale_independent_registry_value(data: str | bytes) -> None:
    sources = parse_policy_xml(data)
    assert sources.kind == "rsop" and not sources.repaired
    assert len(sources.audit_settings) == 2  # the UserResults one is not counted
    pc = sources.process_creation()
    assert pc is not None
    assert (pc.setting_value, pc.precedence, pc.gpo.identifier, pc.gpo.name) == (3, 1, AUDIT_GPO, "Process Auditing")

    cmdline = sources.cmdline_setting()
    assert cmdline is not None and (cmdline.enabled, cmdline.via, cmdline.gpo.name) == (
        True,
        "registry_value",
        "Process Auditing",
    )
    size = sources.security_log_max_size()
    assert size is not None and (size.max_size_kb, size.via, size.gpo.name) == (1024000, "registry_value", "Baseline")

    tracking = sources.legacy_process_tracking()
    assert tracking is not None and tracking.setting_value == 0 and tracking.gpo.name == "Baseline"
    assert PROCESS_CREATION_GUID in tracking.subcategories
    assert sorted((s.name, s.setting_value) for s in sources.legacy_audit_settings()) == [
        ("AuditLogonEvents", 3),
        ("AuditProcessTracking", 0),
    ]
    force = sources.force_subcategory()
    assert force is not None and force.enabled is False


def test_localized_admx_policy_name_is_not_recognised_without_the_registry_value() -> None:
    start = TRIMMED.index("<r2:RegistrySetting>")
    end = TRIMMED.index("</r2:RegistrySetting>") + len("</r2:RegistrySetting>")
    sources = parse_policy_xml(TRIMMED[:start] + TRIMMED[end:])
    assert sources.cmdline_setting() is None
    assert sources.registry_policies[0].name.startswith("Prozessbefehlszeile")


def test_sibling_fragments_without_a_root() -> None:
    start = TRIMMED.index("<ExtensionData>", TRIMMED.index("<ComputerResults>"))
    end = TRIMMED.index("</ComputerResults>")
    sources = parse_policy_xml(TRIMMED[start:end])  # three ExtensionData siblings, xsi undeclared
    assert (sources.kind, sources.repaired) == ("fragment", True)
    pc = sources.process_creation()
    assert pc is not None and pc.setting_value == 3 and pc.gpo.name is None  # no GPO list in the fragment
    assert sources.force_subcategory() is not None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("gpresult : ERROR: Access denied.\n", 1, "not XML"),
        ("<<<>>>", 1, "not Group Policy XML"),
        ('<?xml version="1.0"?>', 1, "not XML"),
        ('<?xml version="1.0"?>\n<html>\n<body>\n<p>no policy</b>\n</html>\n', 4, "not Group Policy XML"),
        (
            '<x xmlns:a="http://www.microsoft.com/GroupPolicy/Settings/Auditing">\n'
            "<a:AuditSetting><a:SettingValue>1</a:SettingValue></a:AuditSetting></x>",
            2,
            "no valid SubcategoryGuid",
        ),
        (
            '<x xmlns:a="http://www.microsoft.com/GroupPolicy/Settings/Auditing">\n\n'
            "<a:AuditSetting><a:SubcategoryGuid>{0cce922b-69ae-11d9-bed3-505054503030}</a:SubcategoryGuid>"
            "<a:SettingValue>Success</a:SettingValue></a:AuditSetting></x>",
            3,
            "is not a number",
        ),
    ],
)
def test_malformed_documents(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_policy_xml(text, source="rsop.xml")
    assert caught.value.line == line
    assert words in str(caught.value)


def test_declaration_after_blank_lines() -> None:
    text = '\n\n<?xml version="1.0" encoding="utf-16"?>\n<GPO xmlns="http://www.microsoft.com/GroupPolicy/Settings"/>'
    assert parse_policy_xml(text).kind == "gpo_report"


def test_entities_are_not_expanded() -> None:
    text = (
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<x xmlns:a="http://www.microsoft.com/GroupPolicy/Settings/Auditing"><a:AuditSetting>'
        "<a:SubcategoryName>&e;</a:SubcategoryName>"
        "<a:SubcategoryGuid>{0cce922b-69ae-11d9-bed3-505054503030}</a:SubcategoryGuid>"
        "<a:SettingValue>1</a:SettingValue></a:AuditSetting></x>"
    )
    pc = parse_policy_xml(text).process_creation()
    assert pc is not None and "root:" not in (pc.subcategory_name or "")
