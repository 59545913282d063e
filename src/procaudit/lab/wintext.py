"""The text Windows tools print, produced from a lab host's state, so procaudit's real parsers read it.

Each function writes what the tool writes on Windows - the layout seen in the captures under
``shared/data/windows`` (auditpol ``/backup`` CSV, ``wevtutil gl``, ``secedit /export``, ``gpresult /x``) -
never a shortcut format. Where a shipped script post-processes a tool's output on the host (the probe
trims ``secedit`` and ``gpresult``), the same steps are modelled here (``trim_*``), so the lab hands the
client exactly what the script would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from procaudit.lab.model import (
    AUDIT_KEY,
    CMDLINE_VALUE,
    EVENTLOG_POLICY_KEY,
    FORCE_VALUE,
    LSA_KEY,
    PROCESS_CREATION,
    GpoSetting,
    LabHost,
)
from procaudit.parsers.auditpol import LEGACY_CATEGORIES, SUBCATEGORIES

_INCLUSION: Final = {0: "No Auditing", 1: "Success", 2: "Failure", 3: "Success and Failure", 4: "No Auditing"}


def dotnet_utc(moment: datetime) -> str:
    """``[DateTime]::UtcNow.ToString('o')``: seven fractional digits and ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


# --- auditpol /backup ---------------------------------------------------------------------------------------


def auditpol_backup(host: LabHost) -> str:
    """``auditpol /backup /file:x.csv``: every subcategory with its effective Setting Value, then the options."""
    machine = host.os.computer_name
    lines = [
        "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value"
    ]
    for guid, sub in SUBCATEGORIES.items():
        value = host.policy.lsa.get(guid, 0)
        lines.append(f"{machine},System,{sub.name},{guid},{_INCLUSION[value]},,{value}")
    for option in ("CrashOnAuditFail", "FullPrivilegeAuditing", "AuditBaseObjects", "AuditBaseDirectories"):
        lines.append(f"{machine},,Option:{option},,Disabled,,0")
    lines.append(f"{machine},,FileGlobalSacl,,,,")
    lines.append(f"{machine},,RegistryGlobalSacl,,,,")
    return "\n".join(lines) + "\n"


# --- secedit /export /areas SECURITYPOLICY ----------------------------------------------------------------


def secedit_export(host: LabHost) -> str:
    """The security template ``secedit /export /areas SECURITYPOLICY`` writes (read back as text, CRLF).

    ``[Event Audit]`` lists every legacy category: the configured value, 0 for the others.
    """
    lines = [
        "[Unicode]",
        "Unicode=yes",
        "[System Access]",
        "MinimumPasswordAge = 1",
        "MaximumPasswordAge = 42",
        "MinimumPasswordLength = 7",
        "LockoutBadCount = 0",
        "[Event Audit]",
    ]
    for key in LEGACY_CATEGORIES:
        lines.append(f"{key} = {host.policy.legacy.get(key, 0)}")
    lines += [
        "[Registry Values]",
        r"MACHINE\System\CurrentControlSet\Control\Lsa\LimitBlankPasswordUse=4,1",
    ]
    force = host.force_subcategory()
    if force is not None:
        lines.append(rf"MACHINE\System\CurrentControlSet\Control\Lsa\{FORCE_VALUE}=4,{force}")
    lines += [
        "[Privilege Rights]",
        "SeNetworkLogonRight = *S-1-1-0,*S-1-5-32-544,*S-1-5-32-545,*S-1-5-32-551",
        "SeSecurityPrivilege = *S-1-5-32-544",
        "[Version]",
        'signature="$CHICAGO$"',
        "Revision=1",
    ]
    return "\r\n".join(lines) + "\r\n"


def trim_security_template(text: str) -> str:
    """What the probe keeps of the export: the [Unicode], [Event Audit] and [Version] sections, CRLF-joined."""
    kept: list[str] = []
    keep = False
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            keep = stripped[1:-1] in ("Unicode", "Event Audit", "Version")
        if keep:
            kept.append(line)
    return "\r\n".join(kept)


# --- wevtutil gl Security -----------------------------------------------------------------------------------


def wevtutil_gl_security(host: LabHost) -> str:
    """``wevtutil gl Security`` as the probe joins its lines (LF)."""
    log = host.security_log
    retention = log.retention != "overwrite"
    auto_backup = log.retention == "archive"
    return "\n".join(
        [
            "name: Security",
            f"enabled: {str(log.enabled).lower()}",
            "type: Admin",
            "owningPublisher:",
            "isolation: Custom",
            f"channelAccess: {log.channel_sddl}",
            "logging:",
            r"  logFileName: %SystemRoot%\System32\Winevt\Logs\Security.evtx",
            f"  retention: {str(retention).lower()}",
            f"  autoBackup: {str(auto_backup).lower()}",
            f"  maxSize: {log.max_size}",
            "publishing:",
            "  fileMax: 1",
        ]
    )


def log_mode(host: LabHost) -> str:
    """``Get-WinEvent -ListLog Security`` LogMode."""
    return {"overwrite": "Circular", "archive": "AutoBackup", "retain": "Retain"}[host.security_log.retention]


# --- gpresult /scope computer /x ---------------------------------------------------------------------------

NS_RSOP: Final = "http://www.microsoft.com/GroupPolicy/Rsop"
NS_SETTINGS: Final = "http://www.microsoft.com/GroupPolicy/Settings"
NS_BASE: Final = "http://www.microsoft.com/GroupPolicy/Settings/Base"
NS_TYPES: Final = "http://www.microsoft.com/GroupPolicy/Types"
NS_AUDITING: Final = NS_SETTINGS + "/Auditing"
NS_SECURITY: Final = NS_SETTINGS + "/Security"
NS_REGISTRY: Final = NS_SETTINGS + "/Registry"

LOCAL_GPO: Final = ("LocalGPO", "Local Group Policy")

# English GPMC texts of the policies a lab GPO can set (AuditSettings.admx and the Event Log ADMX), as the
# NSA baseline's GPMC report prints them.
_CMDLINE_POLICY = (
    "Include command line in process creation events",
    "This policy setting determines what information is logged in security audit events when a new process "
    "has been created.",
    "At least Windows Server 2012 R2, Windows 8.1 or Windows RT 8.1",
    "System/Audit Process Creation",
)
_FORCE_DISPLAY = (
    "Audit: Force audit policy subcategory settings (Windows Vista or later) to override audit policy category settings"
)


def _gpo_ref(guid: str, domain: str) -> str:
    if guid == LOCAL_GPO[0]:
        return f'<GPO xmlns="{NS_BASE}"><Identifier xmlns="{NS_TYPES}">LocalGPO</Identifier></GPO>'
    return (
        f'<GPO xmlns="{NS_BASE}"><Identifier xmlns="{NS_TYPES}">{guid}</Identifier>'
        f'<Domain xmlns="{NS_TYPES}">{domain}</Domain></GPO>'
    )


def _origin(guid: str, domain: str, precedence: int) -> str:
    return f'{_gpo_ref(guid, domain)}<Precedence xmlns="{NS_BASE}">{precedence}</Precedence>'


def _extension(prefix: str, namespace: str, xsi_type: str, name: str, settings: list[str]) -> str:
    body = "\n".join(settings)
    return (
        f'<ExtensionData><Extension xmlns:{prefix}="{namespace}" xsi:type="{prefix}:{xsi_type}" '
        f'xmlns="{NS_SETTINGS}">\n{body}\n</Extension><Name xmlns="{NS_SETTINGS}">{name}</Name></ExtensionData>'
    )


def gpresult_rsop(host: LabHost, now: datetime | None = None) -> str:
    """A computer RSoP (``gpresult /scope computer /x``) for the host's local and domain policy.

    Layout after the real RSoP in ``02_gpresult_xml``: every setting names its GPO and precedence (1 wins;
    domain GPOs are applied after the local GPO, so they win), and unrelated settings are there too, as on a
    real host, for the probe's trimming to remove.
    """
    now = now or datetime.now(UTC)
    domain = host.os.domain
    policy = host.policy
    gpos: dict[str, str] = {LOCAL_GPO[0]: LOCAL_GPO[1]}

    def note(setting: GpoSetting) -> str:
        gpos.setdefault(setting.gpo_guid, setting.gpo_name)
        return setting.gpo_guid

    audit: list[str] = []
    for guid, local_value in policy.local_advanced.items():
        precedence = 2 if guid in policy.domain_advanced else 1
        audit.append(_audit_setting(LOCAL_GPO[0], domain, precedence, guid, local_value))
    for guid, setting in policy.domain_advanced.items():
        audit.append(_audit_setting(note(setting), domain, 1, guid, setting.value))

    security: list[str] = [
        f"<q1:SecurityOptions>{_origin(LOCAL_GPO[0], domain, 1)}"
        r"<q1:KeyName>MACHINE\System\CurrentControlSet\Control\Lsa\LimitBlankPasswordUse</q1:KeyName>"
        "<q1:SettingNumber>1</q1:SettingNumber><q1:Display><q1:Name>Accounts: Limit local account use of blank "
        "passwords to console logon only</q1:Name><q1:Units /><q1:DisplayBoolean>true</q1:DisplayBoolean>"
        "</q1:Display></q1:SecurityOptions>"
    ]
    for category, setting in policy.legacy_gpo.items():
        security.append(
            f"<q1:Audit>{_origin(note(setting), domain, 1)}<q1:Name>{category}</q1:Name>"
            f"<q1:SuccessAttempts>{str(bool(setting.value & 1)).lower()}</q1:SuccessAttempts>"
            f"<q1:FailureAttempts>{str(bool(setting.value & 2)).lower()}</q1:FailureAttempts></q1:Audit>"
        )
    registry: list[str] = []
    for (key, value_name), setting in policy.domain_registry.items():
        if (key, value_name) == (LSA_KEY, FORCE_VALUE):
            security.append(
                f"<q1:SecurityOptions>{_origin(note(setting), domain, 1)}"
                rf"<q1:KeyName>MACHINE\System\CurrentControlSet\Control\Lsa\{FORCE_VALUE}</q1:KeyName>"
                f"<q1:SettingNumber>{setting.value}</q1:SettingNumber><q1:Display><q1:Name>{_FORCE_DISPLAY}"
                f"</q1:Name><q1:Units /><q1:DisplayBoolean>{str(setting.value == 1).lower()}</q1:DisplayBoolean>"
                "</q1:Display></q1:SecurityOptions>"
            )
        elif (key, value_name) == (AUDIT_KEY, CMDLINE_VALUE):
            name, explain, supported, category = _CMDLINE_POLICY
            state = "Enabled" if setting.value == 1 else "Disabled"
            registry.append(
                f"<q4:Policy>{_origin(note(setting), domain, 1)}<q4:Name>{escape(name)}</q4:Name>"
                f"<q4:State>{state}</q4:State><q4:Explain>{escape(explain)}</q4:Explain>"
                f"<q4:Supported>{escape(supported)}</q4:Supported><q4:Category>{escape(category)}</q4:Category>"
                "</q4:Policy>"
            )
        elif (key, value_name) == (EVENTLOG_POLICY_KEY, "MaxSize"):
            # The Event Log ADMX policy as GPMC reports it: a Numeric part holds the size in KB.
            registry.append(
                f"<q4:Policy>{_origin(note(setting), domain, 1)}<q4:Name>Specify the maximum log file size (KB)"
                "</q4:Name><q4:State>Enabled</q4:State><q4:Explain>This policy setting specifies the maximum size "
                "of the log file in kilobytes.</q4:Explain><q4:Supported>At least Windows Vista</q4:Supported>"
                "<q4:Category>Windows Components/Event Log Service/Security</q4:Category><q4:Numeric><q4:Name>"
                f"Maximum Log Size (KB)</q4:Name><q4:State>Enabled</q4:State><q4:Value>{setting.value}</q4:Value>"
                "</q4:Numeric></q4:Policy>"
            )
    if registry:
        # An unrelated policy from the same GPO, as a real baseline has dozens.
        owner = next(iter(policy.domain_registry.values()))
        registry.append(
            f"<q4:Policy>{_origin(owner.gpo_guid, domain, 1)}<q4:Name>Turn off Autoplay</q4:Name>"
            "<q4:State>Enabled</q4:State><q4:Explain>This policy setting allows you to turn off the Autoplay "
            "feature.</q4:Explain><q4:Supported>At least Windows 2000</q4:Supported>"
            "<q4:Category>Windows Components/AutoPlay Policies</q4:Category></q4:Policy>"
        )

    gpo_list = "\n".join(_gpo_element(guid, name, domain) for guid, name in gpos.items())
    extensions = []
    if audit:
        extensions.append(_extension("q3", NS_AUDITING, "AuditSettings", "Advanced Audit Configuration", audit))
    extensions.append(_extension("q1", NS_SECURITY, "SecuritySettings", "Security", security))
    if registry:
        extensions.append(_extension("q4", NS_REGISTRY, "RegistrySettings", "Registry", registry))
    computer = f"{domain.split('.')[0].upper()}\\{host.os.computer_name}$"
    return (
        '<?xml version="1.0" encoding="utf-16"?>\n'
        f'<Rsop xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns="{NS_RSOP}">\n'
        f"  <ReadTime>{dotnet_utc(now)}</ReadTime>\n  <DataType>LoggedData</DataType>\n"
        "  <UserResults><Version>0</Version></UserResults>\n"
        "  <ComputerResults>\n"
        f"    <Version>2228228</Version><Name>{escape(computer)}</Name><Domain>{domain}</Domain>"
        f"<SOM>{domain}/Servers</SOM><Site>Default-First-Site-Name</Site>\n"
        "    <SearchedSOM><Path>Local</Path><Type>Local</Type><Order>1</Order><BlocksInheritance>false"
        "</BlocksInheritance><Blocked>false</Blocked><Reason>Normal</Reason></SearchedSOM>\n"
        f'    <SecurityGroup><SID xmlns="{NS_TYPES}">S-1-5-18</SID><Name xmlns="{NS_TYPES}">NT AUTHORITY\\SYSTEM'
        "</Name></SecurityGroup>\n    <SlowLink>false</SlowLink>\n"
        "    <ExtensionStatus><Name>Security</Name><Identifier>{827D319E-6EAC-11D2-A4EA-00C04F79F83A}</Identifier>"
        "<LoggingStatus>Complete</LoggingStatus><Error>0</Error></ExtensionStatus>\n"
        f"{gpo_list}\n" + "\n".join(extensions) + "\n  </ComputerResults>\n</Rsop>\n"
    )


def _audit_setting(guid: str, domain: str, precedence: int, subcategory: str, value: int) -> str:
    sub = SUBCATEGORIES.get(subcategory)
    name = f"Audit {sub.name}" if sub else subcategory
    return (
        f"<q3:AuditSetting>{_origin(guid, domain, precedence)}<q3:PolicyTarget>System</q3:PolicyTarget>"
        f"<q3:SubcategoryName>{escape(name)}</q3:SubcategoryName>"
        f"<q3:SubcategoryGuid>{subcategory.lower()}</q3:SubcategoryGuid>"
        f"<q3:SettingValue>{value}</q3:SettingValue></q3:AuditSetting>"
    )


def _gpo_element(guid: str, name: str, domain: str) -> str:
    path = (
        f'<Identifier xmlns="{NS_TYPES}">LocalGPO</Identifier>'
        if guid == LOCAL_GPO[0]
        else f'<Identifier xmlns="{NS_TYPES}">{guid}</Identifier><Domain xmlns="{NS_TYPES}">{domain}</Domain>'
    )
    som = "Local" if guid == LOCAL_GPO[0] else domain
    return (
        f"    <GPO><Name>{escape(name)}</Name><Path>{path}</Path><VersionDirectory>1</VersionDirectory>"
        "<VersionSysvol>1</VersionSysvol><Enabled>true</Enabled><IsValid>true</IsValid>"
        f"<FilterAllowed>true</FilterAllowed><AccessDenied>false</AccessDenied><Link><SOMPath>{som}</SOMPath>"
        "<SOMOrder>1</SOMOrder><AppliedOrder>1</AppliedOrder><LinkOrder>1</LinkOrder><Enabled>true</Enabled>"
        "<NoOverride>false</NoOverride></Link><ExtensionName>Security</ExtensionName></GPO>"
    )


def _child_text(element: etree._Element, local: str, namespace: str) -> str:
    found = element.find(f".//{{{namespace}}}{local}")
    return (found.text or "").strip() if found is not None else ""


def trim_rsop(text: str, policy_names: list[str]) -> str:
    """What the probe does to the RSoP before returning it (see checks/Get-ProcAuditFacts.ps1).

    The same XPath steps: drop everything but ComputerResults' GPO list (Name and Path only) and its
    ExtensionData; in each Extension keep only the Process Creation AuditSetting, legacy Audit settings, the
    SCENoApplyLegacyAuditPolicy security option, RegistrySettings under ``...\\Policies\\System\\Audit`` or
    ``...\\EventLog\\Security`` and the ADMX Policies named in ``policy_names`` (without Explain and
    Supported); drop ExtensionData left empty, then the GPOs no kept setting names. Serialised without
    whitespace, as ``XmlDocument.OuterXml`` is for a document loaded without PreserveWhitespace.
    """
    declaration, _, body = text.partition("?>")
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(body.strip().encode("utf-8"), parser)
    tree = root.getroottree()
    wanted = {n.lower() for n in policy_names}
    drop = (
        "/*/*[local-name()!='ComputerResults'] | /*/*/*[local-name()!='GPO' and local-name()!='ExtensionData']"
        " | /*/*/*[local-name()='GPO']/*[local-name()!='Name' and local-name()!='Path']"
    )
    for node in list(tree.xpath(drop)):
        _remove(node)
    for setting in list(tree.xpath("/*/*/*[local-name()='ExtensionData']/*[local-name()='Extension']/*")):
        if not _keep_setting(setting, wanted):
            _remove(setting)
            continue
        for part in setting.xpath("*[local-name()='Explain' or local-name()='Supported']"):
            setting.remove(part)
    for node in list(tree.xpath("/*/*/*[local-name()='ExtensionData'][not(*[local-name()='Extension']/*)]")):
        _remove(node)
    # PowerShell hashtable keys compare case-insensitively.
    used = {
        (i.text or "").strip().lower()
        for i in tree.xpath(
            "/*/*/*[local-name()='ExtensionData']/*/*/*[local-name()='GPO']/*[local-name()='Identifier']"
        )
    }
    for node in list(tree.xpath("/*/*/*[local-name()='GPO']")):
        if _child_text(node, "Identifier", NS_TYPES).lower() not in used:
            _remove(node)
    serialised = str(etree.tostring(root, encoding="unicode"))
    return declaration + "?>" + serialised if declaration.lstrip().startswith("<?xml") else serialised


def _remove(node: etree._Element) -> None:
    parent = node.getparent()
    if parent is not None:
        parent.remove(node)


def _keep_setting(setting: etree._Element, policy_names: set[str]) -> bool:
    qname = etree.QName(setting)
    namespace, local = qname.namespace or "", qname.localname
    if local == "AuditSetting":
        guid = _child_text(setting, "SubcategoryGuid", namespace).lower()
        return namespace == NS_AUDITING and guid == PROCESS_CREATION.lower()
    if local == "Audit":
        return namespace == NS_SECURITY
    if local == "SecurityOptions":
        key = _child_text(setting, "KeyName", namespace).lower()
        return namespace == NS_SECURITY and key.endswith("\\" + FORCE_VALUE.lower())
    if local == "RegistrySetting":
        key = _child_text(setting, "KeyPath", namespace).lower()
        return namespace == NS_REGISTRY and key.endswith(("\\policies\\system\\audit", "\\eventlog\\security"))
    if local == "Policy":
        return namespace == NS_REGISTRY and _child_text(setting, "Name", namespace).lower() in policy_names
    return False
