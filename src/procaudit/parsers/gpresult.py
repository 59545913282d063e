"""Group Policy XML: RSoP (``gpresult /scope computer /x``) and GPMC reports (``Get-GPOReport -ReportType Xml``).

Both put settings in ``<ExtensionData><Extension>`` blocks whose children live in per-extension namespaces.
The prefixes (``q1`` ... ``q5``) are numbered per document, so everything here matches namespace URIs:

- ``.../Settings/Auditing``: ``AuditSetting`` (PolicyTarget, SubcategoryName, SubcategoryGuid, SettingValue),
  the advanced audit policy of ``audit.csv``;
- ``.../Settings/Registry``: ``Policy`` (an ADMX policy: Name, State, Category, ``Numeric`` parts ...; names are
  localized) and ``RegistrySetting`` (KeyPath, AdmSetting, ``Value`` with Name and Number or String);
- ``.../Settings/Security``: ``SecurityOptions`` (KeyName or SystemAccessPolicyName, SettingNumber /
  SettingString / SettingBoolean) and ``Audit`` (legacy category: Name, SuccessAttempts, FailureAttempts).

In an RSoP every setting names its GPO (``<GPO xmlns=".../Settings/Base"><Identifier>{GUID}</Identifier>``)
and its ``<Precedence>`` (1 wins; a setting several GPOs set appears once per GPO). The GPO names are in the
``ComputerResults/GPO`` list. A GPMC report is one GPO: its settings carry no GPO element, the report's own
``Identifier`` and ``Name`` apply. Only the computer half counts (``ComputerResults``, ``Computer``).

What the captures in ``02_gpresult_xml`` showed: GPMC reports are UTF-16LE with a BOM and CRLF; the RSoP file
declares ``encoding="utf-16"`` but is UTF-8 text; GPO GUIDs come in mixed case (``{6AC1786C-...-00C04fB984F9}``);
the published RSoP fragment has no root, an undeclared ``xsi`` prefix and no ``</Extension>``. Fragments like that
(what a probe sends when it trims the document to the relevant nodes) are repaired and parsed, and the result
says so (``repaired``).

Shapes not seen in a capture, taken from public scripts that read these reports, are marked where they are
read: the legacy ``Audit`` element and ``RegistrySetting/Value``.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal, TypeVar

from lxml import etree
from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError
from procaudit.parsers._text import decode_text, normalize_guid
from procaudit.parsers.auditpol import PROCESS_CREATION_GUID, legacy_category_subcategories
from procaudit.parsers.secedit import SCE_NO_APPLY_LEGACY_AUDIT_POLICY

NS_SETTINGS: Final = "http://www.microsoft.com/GroupPolicy/Settings"
NS_BASE: Final = "http://www.microsoft.com/GroupPolicy/Settings/Base"
NS_TYPES: Final = "http://www.microsoft.com/GroupPolicy/Types"
NS_RSOP: Final = "http://www.microsoft.com/GroupPolicy/Rsop"
NS_AUDITING: Final = "http://www.microsoft.com/GroupPolicy/Settings/Auditing"
NS_REGISTRY: Final = "http://www.microsoft.com/GroupPolicy/Settings/Registry"
NS_SECURITY: Final = "http://www.microsoft.com/GroupPolicy/Settings/Security"
_NS_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

CMDLINE_KEY: Final = r"Software\Microsoft\Windows\CurrentVersion\Policies\System\Audit"
CMDLINE_VALUE: Final = "ProcessCreationIncludeCmdLine_Enabled"
# The ADMX policy's English display name (AuditSettings.admx "IncludeCmdLine"); GPMC writes it localized.
CMDLINE_POLICY_NAME: Final = "Include command line in process creation events"
EVENTLOG_SECURITY_KEY: Final = r"Software\Policies\Microsoft\Windows\EventLog\Security"
# English names of the EventLog ADMX policies and their category, as the NSA and Microsoft reports print them.
MAX_SIZE_POLICY_NAME: Final = "Specify the maximum log file size (KB)"
RETENTION_POLICY_NAME: Final = "Control Event Log behavior when the log file reaches its maximum size"
SECURITY_LOG_CATEGORY: Final = "Windows Components/Event Log Service/Security"

DocumentKind = Literal["rsop", "gpo_report", "fragment"]


class GpoRef(BaseModel):
    """The GPO a setting comes from. ``identifier`` is an upper-case braced GUID or ``LocalGPO``."""

    model_config = ConfigDict(frozen=True)

    identifier: str | None
    domain: str | None = None
    name: str | None = None


class _Setting(BaseModel):
    model_config = ConfigDict(frozen=True)

    gpo: GpoRef
    precedence: int | None
    """1 is the winning GPO in an RSoP; ``None`` in a GPMC report (one GPO) or a fragment without it."""
    line: int | None
    """Line of the setting's element in the document, for messages."""


class AuditSubcategorySetting(_Setting):
    guid: str
    subcategory_name: str | None
    """As written (localized, "Audit " prefix); display only."""
    policy_target: str | None
    setting_value: int


class RegistryPolicySetting(_Setting):
    """An ADMX policy. ``name`` and ``category`` are localized display text."""

    name: str
    state: str | None
    category: str | None
    numbers: dict[str, int]
    """The policy's ``Numeric`` parts, by their (localized) name."""


class RegistryValueSetting(_Setting):
    """A registry value set by a GPO (``RegistrySetting``), found by key and value name whatever the locale."""

    key_path: str
    value_name: str | None
    value: str | None
    value_kind: str | None
    """The element that held the value: ``Number`` or ``String`` (as GPMC names them)."""
    adm_setting: bool | None


class LegacyAuditSetting(_Setting):
    """A legacy category policy from ``[Event Audit]`` (``AuditProcessTracking``)."""

    name: str
    success: bool
    failure: bool

    @property
    def setting_value(self) -> int:
        return (1 if self.success else 0) | (2 if self.failure else 0)

    @property
    def subcategories(self) -> tuple[str, ...]:
        """GUIDs of the subcategories this category overwrites when applied."""
        return legacy_category_subcategories(self.name)


class SecurityOptionSetting(_Setting):
    key_name: str | None
    system_access_policy_name: str | None
    setting_number: int | None
    setting_string: str | None
    setting_boolean: bool | None
    display_name: str | None

    @property
    def enabled(self) -> bool | None:
        """For a boolean option such as SCENoApplyLegacyAuditPolicy: 1 / true is enabled."""
        if self.setting_number is not None:
            return self.setting_number == 1
        return self.setting_boolean


class CmdlineSetting(BaseModel):
    """Who sets ProcessCreationIncludeCmdLine_Enabled, and to what."""

    model_config = ConfigDict(frozen=True)

    enabled: bool | None
    """``None`` when the policy is present but its state cannot be read."""
    via: Literal["registry_value", "admx_policy"]
    gpo: GpoRef
    precedence: int | None


class SecurityLogSize(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_size_kb: int
    via: Literal["registry_value", "admx_policy"]
    gpo: GpoRef
    precedence: int | None


class PolicySources(BaseModel):
    """The settings of one RSoP, GPMC report or fragment, each with its GPO, and queries over them."""

    model_config = ConfigDict(frozen=True)

    kind: DocumentKind
    repaired: bool
    """The XML was not well-formed (a trimmed fragment) and was parsed in recovery mode."""
    gpo_names: dict[str, str]
    """GPO identifier -> display name, from the document's GPO list (RSoP) or the report's own name."""
    audit_settings: tuple[AuditSubcategorySetting, ...]
    registry_policies: tuple[RegistryPolicySetting, ...]
    registry_values: tuple[RegistryValueSetting, ...]
    legacy_audit: tuple[LegacyAuditSetting, ...]
    security_options: tuple[SecurityOptionSetting, ...]

    def audit_subcategory(self, guid: str) -> AuditSubcategorySetting | None:
        """The winning setting of an advanced-audit subcategory, ``None`` when no GPO sets it."""
        key = normalize_guid(guid)
        return _winner([s for s in self.audit_settings if s.guid == key])

    def process_creation(self) -> AuditSubcategorySetting | None:
        """Which GPO sets Audit Process Creation, and to what (``setting_value``)."""
        return self.audit_subcategory(PROCESS_CREATION_GUID)

    def registry_value(self, key_path: str, value_name: str) -> RegistryValueSetting | None:
        wanted = (_norm_key(key_path), value_name.lower())
        matches = [
            s
            for s in self.registry_values
            if s.value_name is not None and (_norm_key(s.key_path), s.value_name.lower()) == wanted
        ]
        return _winner(matches)

    def registry_policy(self, name: str, category: str | None = None) -> RegistryPolicySetting | None:
        """The winning ADMX policy by its display name (and category); only matches the report's language."""
        matches = [
            p
            for p in self.registry_policies
            if p.name.strip().lower() == name.lower()
            and (category is None or (p.category or "").strip().lower() == category.lower())
        ]
        return _winner(matches)

    def cmdline_setting(self) -> CmdlineSetting | None:
        """Which GPO sets "Include command line in process creation events", and to what.

        A ``RegistrySetting`` for the value is locale-independent and preferred. The ADMX policy can only
        be recognised by its English name, so a report in another language yields ``None`` here even when
        the policy is set: treat ``None`` as "not found", not as "not configured".
        """
        value = self.registry_value(CMDLINE_KEY, CMDLINE_VALUE)
        if value is not None:
            number = _to_int(value.value)
            enabled = None if number is None else number == 1
            return CmdlineSetting(enabled=enabled, via="registry_value", gpo=value.gpo, precedence=value.precedence)
        policy = self.registry_policy(CMDLINE_POLICY_NAME)
        if policy is not None:
            state = (policy.state or "").lower()
            enabled = True if state == "enabled" else False if state == "disabled" else None
            return CmdlineSetting(enabled=enabled, via="admx_policy", gpo=policy.gpo, precedence=policy.precedence)
        return None

    def legacy_audit_settings(self) -> list[LegacyAuditSetting]:
        """The winning legacy category setting per category. Any entry, even "no auditing", is applied."""
        by_name: dict[str, list[LegacyAuditSetting]] = {}
        for setting in self.legacy_audit:
            by_name.setdefault(setting.name.lower(), []).append(setting)
        return [w for group in by_name.values() if (w := _winner(group)) is not None]

    def legacy_process_tracking(self) -> LegacyAuditSetting | None:
        """The winning "Audit process tracking" setting, which overwrites Process Creation when applied."""
        return _winner([s for s in self.legacy_audit if s.name.lower() == "auditprocesstracking"])

    def force_subcategory(self) -> SecurityOptionSetting | None:
        """The GPO setting SCENoApplyLegacyAuditPolicy ("Audit: Force audit policy subcategory settings")."""
        wanted = SCE_NO_APPLY_LEGACY_AUDIT_POLICY.lower()
        return _winner([s for s in self.security_options if (s.key_name or "").lower() == wanted])

    def security_log_max_size(self) -> SecurityLogSize | None:
        """The Security log maximum size (KB) a GPO sets through the EventLog Administrative Template."""
        value = self.registry_value(EVENTLOG_SECURITY_KEY, "MaxSize")
        if value is not None and (number := _to_int(value.value)) is not None:
            return SecurityLogSize(max_size_kb=number, via="registry_value", gpo=value.gpo, precedence=value.precedence)
        policy = self.registry_policy(MAX_SIZE_POLICY_NAME, SECURITY_LOG_CATEGORY)
        if policy is not None and policy.numbers and (policy.state or "").lower() == "enabled":
            size = next(iter(policy.numbers.values()))
            return SecurityLogSize(max_size_kb=size, via="admx_policy", gpo=policy.gpo, precedence=policy.precedence)
        return None

    def security_log_retention(self) -> RegistryPolicySetting | RegistryValueSetting | None:
        """The "Control Event Log behavior ..." setting for the Security log (``Retention``), if a GPO sets it."""
        return self.registry_value(EVENTLOG_SECURITY_KEY, "Retention") or self.registry_policy(
            RETENTION_POLICY_NAME, SECURITY_LOG_CATEGORY
        )


_S = TypeVar("_S", bound=_Setting)


def _winner(settings: list[_S]) -> _S | None:
    if not settings:
        return None
    return min(settings, key=lambda s: s.precedence if s.precedence is not None else 1)


def _norm_key(path: str) -> str:
    lowered = path.strip().strip("\\").lower()
    for prefix in ("hkey_local_machine\\", "hklm\\", "machine\\"):
        if lowered.startswith(prefix):
            return lowered[len(prefix) :]
    return lowered


def _to_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


# --- parsing -----------------------------------------------------------------------------------------------

_XML_DECL = re.compile(r"^(\s*)<\?xml[^>]*\?>")
_SOURCE = "Group Policy XML (gpresult /x or Get-GPOReport)"


def parse_policy_xml(data: str | bytes, *, source: str = _SOURCE) -> PolicySources:
    """Parse an RSoP, a GPMC report or a fragment of either into ``PolicySources``.

    Raises:
        ParseError: the text is not XML even in recovery mode, or a setting lacks what it must have (an
            AuditSetting without a GUID or numeric SettingValue); with the line where lxml or the element
            tells it.
    """
    root, repaired = _load(data, source)
    kind: DocumentKind
    if _is(root, NS_RSOP, "Rsop"):
        kind = "rsop"
    elif _is(root, NS_SETTINGS, "GPO") or any(_is(e, NS_SETTINGS, "GPO") for e in root.iterchildren()):
        kind = "gpo_report"
    else:
        kind = "fragment"

    elements = _computer_elements(root)
    names = _gpo_names(elements)
    audit: list[AuditSubcategorySetting] = []
    policies: list[RegistryPolicySetting] = []
    values: list[RegistryValueSetting] = []
    legacy: list[LegacyAuditSetting] = []
    options: list[SecurityOptionSetting] = []

    for element in elements:
        namespace, local = _split(element.tag)
        if namespace == NS_AUDITING and local == "AuditSetting":
            audit.append(_audit_setting(element, names, source))
        elif namespace == NS_REGISTRY and local == "Policy":
            policies.append(_registry_policy(element, names))
        elif namespace == NS_REGISTRY and local == "RegistrySetting":
            values.append(_registry_value(element, names))
        elif namespace == NS_SECURITY and local == "Audit":
            legacy.append(_legacy_audit(element, names, source))
        elif namespace == NS_SECURITY and local == "SecurityOptions":
            options.append(_security_option(element, names))

    return PolicySources(
        kind=kind,
        repaired=repaired,
        gpo_names=names,
        audit_settings=tuple(audit),
        registry_policies=tuple(policies),
        registry_values=tuple(values),
        legacy_audit=tuple(legacy),
        security_options=tuple(options),
    )


def _load(data: str | bytes, source: str) -> tuple[Any, bool]:
    # lxml refuses a str with an encoding declaration, and the RSoP capture declares utf-16 while being UTF-8:
    # drop the declaration but keep the line break after it, so element line numbers stay the file's.
    text = _XML_DECL.sub(lambda m: m.group(1), decode_text(data, source=source), count=1)
    if not text.lstrip().startswith("<"):
        raise ParseError("not XML: the text does not start with '<'", source=source, line=1)
    # No DTDs, no entity expansion, no network: the document comes from a host we do not trust blindly.
    options: dict[str, Any] = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}
    try:
        return etree.fromstring(text, etree.XMLParser(**options)), False
    except etree.XMLSyntaxError as exc:
        first_error = exc
    except ValueError as exc:  # lxml refuses some str input outright (a second encoding declaration)
        raise ParseError(f"not parseable as XML: {exc}", source=source, line=1) from exc
    # A fragment: several top-level nodes, prefixes declared on an element that was cut away, unclosed tags.
    # Wrap it in a root that declares xsi and let libxml2 recover; the wrapper adds no line.
    wrapped = f'<procaudit-fragment xmlns:xsi="{_NS_XSI}">{text}</procaudit-fragment>'
    try:
        root = etree.fromstring(wrapped, etree.XMLParser(recover=True, **options))
    except (etree.XMLSyntaxError, ValueError):
        root = None
    if root is None or not any(_split(e.tag)[0] in _KNOWN_NAMESPACES for e in root.iter() if isinstance(e.tag, str)):
        raise ParseError(f"not Group Policy XML: {first_error.msg}", source=source, line=first_error.lineno)
    return root, True


_KNOWN_NAMESPACES: Final = frozenset({NS_SETTINGS, NS_BASE, NS_RSOP, NS_AUDITING, NS_REGISTRY, NS_SECURITY})


def _split(tag: Any) -> tuple[str, str]:
    if not isinstance(tag, str):
        return "", ""  # comments and processing instructions
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _is(element: Any, namespace: str, local: str) -> bool:
    return _split(element.tag) == (namespace, local)


def _computer_elements(root: Any) -> list[Any]:
    """Every element except those under the user half (RSoP ``UserResults``, report ``User``)."""
    result: list[Any] = []
    stack = [root]
    while stack:
        element = stack.pop()
        if _is(element, NS_RSOP, "UserResults") or _is(element, NS_SETTINGS, "User"):
            continue
        result.append(element)
        stack.extend(reversed([c for c in element if isinstance(c.tag, str)]))
    return result


def _child(element: Any, namespace: str, local: str) -> Any | None:
    return element.find(f"{{{namespace}}}{local}")


def _text(element: Any, namespace: str, local: str) -> str | None:
    child = _child(element, namespace, local)
    if child is None or child.text is None:
        return None
    return str(child.text).strip()


def _gpo_names(elements: list[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for element in elements:
        if _is(element, NS_RSOP, "GPO"):
            path = _child(element, NS_RSOP, "Path")
            identifier = _text(path, NS_TYPES, "Identifier") if path is not None else None
            name = _text(element, NS_RSOP, "Name")
        elif _is(element, NS_SETTINGS, "GPO"):
            ref = _report_gpo(element)
            identifier, name = ref.identifier, ref.name
        else:
            continue
        # gpresult prints the GUID as the name of a GPO it could not read: that is no name.
        if identifier and name and normalize_guid(name) is None:
            names[_norm_gpo(identifier)] = name
    return names


def _norm_gpo(identifier: str) -> str:
    return normalize_guid(identifier) or identifier.strip()


def _report_gpo(element: Any) -> GpoRef:
    ident = _child(element, NS_SETTINGS, "Identifier")
    identifier = _text(ident, NS_TYPES, "Identifier") if ident is not None else None
    domain = _text(ident, NS_TYPES, "Domain") if ident is not None else None
    return GpoRef(
        identifier=_norm_gpo(identifier) if identifier else None,
        domain=domain,
        name=_text(element, NS_SETTINGS, "Name"),
    )


def _origin(element: Any, names: dict[str, str]) -> tuple[GpoRef, int | None]:
    """The GPO and precedence of a setting: its own Base:GPO, else the report GPO it sits in."""
    precedence_text = _text(element, NS_BASE, "Precedence")
    precedence = int(precedence_text) if precedence_text and precedence_text.isdigit() else None
    gpo = _child(element, NS_BASE, "GPO")
    if gpo is not None:
        identifier = _text(gpo, NS_TYPES, "Identifier")
        key = _norm_gpo(identifier) if identifier else None
        return GpoRef(identifier=key, domain=_text(gpo, NS_TYPES, "Domain"), name=names.get(key or "")), precedence
    report = next(element.iterancestors(f"{{{NS_SETTINGS}}}GPO"), None)
    return (_report_gpo(report) if report is not None else GpoRef(identifier=None)), precedence


def _line(element: Any) -> int | None:
    line = element.sourceline
    return int(line) if isinstance(line, int) else None


def _audit_setting(element: Any, names: dict[str, str], source: str) -> AuditSubcategorySetting:
    gpo, precedence = _origin(element, names)
    guid_text = _text(element, NS_AUDITING, "SubcategoryGuid") or ""
    guid = normalize_guid(guid_text)
    if guid is None:
        raise ParseError(
            f"AuditSetting has no valid SubcategoryGuid ({guid_text!r})", source=source, line=_line(element)
        )
    value_text = _text(element, NS_AUDITING, "SettingValue") or ""
    if not value_text.isdigit():
        raise ParseError(
            f"AuditSetting {guid}: SettingValue {value_text!r} is not a number", source=source, line=_line(element)
        )
    return AuditSubcategorySetting(
        gpo=gpo,
        precedence=precedence,
        line=_line(element),
        guid=guid,
        subcategory_name=_text(element, NS_AUDITING, "SubcategoryName"),
        policy_target=_text(element, NS_AUDITING, "PolicyTarget"),
        setting_value=int(value_text),
    )


def _registry_policy(element: Any, names: dict[str, str]) -> RegistryPolicySetting:
    gpo, precedence = _origin(element, names)
    numbers: dict[str, int] = {}
    for numeric in element.findall(f"{{{NS_REGISTRY}}}Numeric"):
        part = _text(numeric, NS_REGISTRY, "Name") or ""
        value = _to_int(_text(numeric, NS_REGISTRY, "Value"))
        if value is not None:
            numbers[part] = value
    return RegistryPolicySetting(
        gpo=gpo,
        precedence=precedence,
        line=_line(element),
        name=_text(element, NS_REGISTRY, "Name") or "",
        state=_text(element, NS_REGISTRY, "State"),
        category=_text(element, NS_REGISTRY, "Category"),
        numbers=numbers,
    )


def _registry_value(element: Any, names: dict[str, str]) -> RegistryValueSetting:
    # Shape of Value (Name + Number | String) from public scripts and tests that read GPMC reports; the
    # captures only show RegistrySetting with KeyPath and AdmSetting.
    gpo, precedence = _origin(element, names)
    value = _child(element, NS_REGISTRY, "Value")
    value_name = value_text = kind = None
    if value is not None:
        value_name = _text(value, NS_REGISTRY, "Name")
        for candidate in value:
            namespace, local = _split(candidate.tag)
            if namespace == NS_REGISTRY and local != "Name":
                kind = local
                value_text = (candidate.text or "").strip()
                break
    adm = _text(element, NS_REGISTRY, "AdmSetting")
    return RegistryValueSetting(
        gpo=gpo,
        precedence=precedence,
        line=_line(element),
        key_path=_text(element, NS_REGISTRY, "KeyPath") or "",
        value_name=value_name,
        value=value_text,
        value_kind=kind,
        adm_setting=None if adm is None else adm.lower() == "true",
    )


def _legacy_audit(element: Any, names: dict[str, str], source: str) -> LegacyAuditSetting:
    # <Audit><Name>AuditProcessTracking</Name><SuccessAttempts>true</SuccessAttempts><FailureAttempts>false
    # </FailureAttempts></Audit>: the shape public GPO-report readers match; no capture here has one.
    gpo, precedence = _origin(element, names)
    name = _text(element, NS_SECURITY, "Name")
    if not name:
        raise ParseError("legacy Audit setting has no Name", source=source, line=_line(element))
    return LegacyAuditSetting(
        gpo=gpo,
        precedence=precedence,
        line=_line(element),
        name=name,
        success=(_text(element, NS_SECURITY, "SuccessAttempts") or "").lower() == "true",
        failure=(_text(element, NS_SECURITY, "FailureAttempts") or "").lower() == "true",
    )


def _security_option(element: Any, names: dict[str, str]) -> SecurityOptionSetting:
    gpo, precedence = _origin(element, names)
    display = _child(element, NS_SECURITY, "Display")
    boolean = _text(element, NS_SECURITY, "SettingBoolean")
    return SecurityOptionSetting(
        gpo=gpo,
        precedence=precedence,
        line=_line(element),
        key_name=_text(element, NS_SECURITY, "KeyName"),
        system_access_policy_name=_text(element, NS_SECURITY, "SystemAccessPolicyName"),
        setting_number=_to_int(_text(element, NS_SECURITY, "SettingNumber")),
        setting_string=_text(element, NS_SECURITY, "SettingString"),
        setting_boolean=None if boolean is None else boolean.lower() == "true",
        display_name=_text(display, NS_SECURITY, "Name") if display is not None else None,
    )
