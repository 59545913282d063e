"""Lab implementations of the SCOM scripts: a management server's Operations Manager module, modelled.

What is modelled (facts: ../shared/reference/scom_mp.md §5, the captures in ../shared/data/windows/07_scom):

- the installed management packs (id -> version, sealed, the XML of unsealed ones), looked up case-insensitively;
- ``Export-SCOMManagementPack``: writes ``<id>.xml`` into the folder given;
- ``Import-SCOMManagementPack``: the pack must be well-formed and valid against the MP schema (else the generic
  "The requested management pack was invalid..." error); every reference must be installed at the referenced
  version or later (else the "Could not load management pack [...] ... Version mismatch ..." error of the capture);
  an unsealed pack replaces an installed unsealed one only with a higher version (a lower *or equal* version is
  refused, wrapped in the capture's "could not be imported ... Verification failed with 1 errors" shape; the
  inner sentence is the lab's own, since no capture of that refusal exists); a pack cannot replace a sealed one;
- alerts: computed, never stored. A rule of an installed unsealed pack raises an alert for every 4688 event that an
  agent reporting to this management group (a lab host whose SCOM agent is running, ``world.hosts``) logged after
  the pack was first imported (upgrades keep it running), when the rule is enabled and its data-source expression
  - read from the pack's XML and evaluated here independently of procaudit's compiler - matches the event's
  ``Params/Param[N]``. Alerts are
  grouped by the rule's suppression values (one alert, repeat count for the rest), named and described from the
  pack's display strings with the alert parameters filled in, as the console shows them.

Regular expressions: only SCOM's documented subset (``procaudit.detections.scom_regex``, with one leading ``(?i)``)
is evaluated, by Python's ``re`` (the two engines read that subset alike); a pattern outside it never matches.

Not modelled: agent latency (alerts appear at once), alert closing and resolution states, overrides, the data
warehouse, run-as accounts, and .NET's regex dialect beyond the documented subset.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from lxml import etree

from procaudit.detections import scom_regex
from procaudit.detections.mpbuild import xsd_errors
from procaudit.events.model import FIELDS
from procaudit.lab.handlers.common import PROGRAM_DATA, STAGING, BindingError, text_param, what_if
from procaudit.lab.model import InstalledMp, LabHost, LabWorld, RecordedEvent, ScomServer
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun
from procaudit.verify import MARKER_PREFIX

NO_MODULE = (
    "The specified module 'OperationsManager' was not loaded because no valid module file was found in any module "
    "directory."
)
INVALID_MP = (
    "The requested management pack was invalid. See inner exception for details.\r\nParameter name: managementPack"
)
_MP_ID = r"^[A-Za-z0-9_.]{1,256}$"
_VERSION = r"^[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}$"
_SINCE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z$"
_ALERT_NAMESPACE = uuid.UUID("5b0c3f7e-1d2a-4c55-9a57-6b1f3e0c9d21")
_SEVERITY = {"0": "Information", "1": "Warning", "2": "Error"}


def _server(ctx: HandlerContext) -> ScomServer | ScriptOutcome:
    server = ctx.host.scom
    if server is None or not server.module_installed:
        return ScriptOutcome(failure=NO_MODULE)
    return server


def _find(server: ScomServer, mp_id: str) -> InstalledMp | None:
    wanted = mp_id.lower()
    return next((mp for key, mp in server.management_packs.items() if key.lower() == wanted), None)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# --- Export-ScomManagementPack -------------------------------------------------------------------------------------


def _exported_xml(mp: InstalledMp) -> str:
    if mp.xml is not None:
        return mp.xml
    # A sealed library exports as XML too; the lab keeps only its identity.
    return (
        '<?xml version="1.0" encoding="utf-8"?><ManagementPack SchemaVersion="2.0" ContentReadable="true">'
        f"<Manifest><Identity><ID>{mp.id}</ID><Version>{mp.version}</Version></Identity><Name>{mp.display_name}</Name>"
        "<References /></Manifest></ManagementPack>"
    )


@handles("Export-ScomManagementPack")
def _export(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    try:
        name = text_param(run, "Name", _MP_ID)
    except BindingError as exc:
        return ScriptOutcome(failure=str(exc))
    server = _server(ctx)
    if isinstance(server, ScriptOutcome):
        return server
    mp = _find(server, name)
    result: dict[str, Any] = {
        "Name": name,
        "Installed": False,
        "Version": None,
        "Sealed": None,
        "DisplayName": None,
        "ManagementGroup": server.management_group,
        "BackupPath": None,
        "ContentBase64": None,
        "Sha256": None,
    }
    if mp is not None:
        result.update(Installed=True, Version=mp.version, Sealed=mp.sealed, DisplayName=mp.display_name)
        if not what_if(run):
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            path = f"{PROGRAM_DATA}\\procaudit\\mp-backup\\{stamp}\\{mp.id}.xml"
            content = _exported_xml(mp).encode("utf-8")
            ctx.host.files[path] = content
            result.update(
                BackupPath=path,
                ContentBase64=base64.b64encode(content).decode("ascii"),
                Sha256=hashlib.sha256(content).hexdigest(),
            )
    return ScriptOutcome(output=[ps_json(result)])


# --- Import-ScomManagementPack -------------------------------------------------------------------------------------


def _wrapped(display: str, mp_id: str, version: str, message: str) -> str:
    """The console's import failure, in the shape of the captured one (07_scom/import_mp_error_version_mismatch)."""
    line = "-" * 55
    return (
        f"{display} could not be imported.If any management packs in the Import list are dependent on this management "
        f"pack, the installation of the dependent management packs will fail.Verification failed with 1 errors: "
        f"{line} Error 1: Found error in 2|{mp_id}|{version}|{mp_id}|| with message: {message}{line}"
    )


@dataclass
class _Pack:
    id: str
    version: str
    display: str
    references: list[tuple[str, str, str]]  # (id, version, key token)


def _read_pack(content: bytes) -> _Pack | None:
    """The pack's identity and references, or ``None`` when SCOM would reject it as invalid."""
    try:
        text = content.decode("utf-8-sig")
        root = etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    except (UnicodeDecodeError, etree.XMLSyntaxError):
        return None
    if xsd_errors(text):
        return None
    references = [
        (ref.findtext("ID") or "", ref.findtext("Version") or "", ref.findtext("PublicKeyToken") or "")
        for ref in root.iterfind("Manifest/References/Reference")
    ]
    return _Pack(
        id=root.findtext("Manifest/Identity/ID") or "",
        version=root.findtext("Manifest/Identity/Version") or "",
        display=root.findtext("Manifest/Name") or "",
        references=references,
    )


def _refusal(server: ScomServer, pack: _Pack | None) -> str | None:
    if pack is None:
        return INVALID_MP
    for ref_id, ref_version, token in pack.references:
        installed = _find(server, ref_id)
        if installed is None:
            return _wrapped(
                pack.display,
                pack.id,
                pack.version,
                f"Could not load management pack [ID={ref_id}, KeyToken={token}, Version={ref_version}]. "
                "The management pack was not found in the store.",
            )
        if _version_key(installed.version) < _version_key(ref_version):
            return _wrapped(
                pack.display,
                pack.id,
                pack.version,
                f"Could not load management pack [ID={ref_id}, KeyToken={token}, Version={ref_version}]. "
                f"The management pack was not found in the store. : Version mismatch. The management pack "
                f"([{installed.id}, {token}, {installed.version}]) requested from the database was version "
                f"{ref_version} but the actual version available is {installed.version}.",
            )
    current = _find(server, pack.id)
    if current is not None and current.sealed:
        return (
            f"Cannot import unsealed management pack {pack.id}. The database already contains a sealed management "
            "pack with the same ID"
        )
    if current is not None and _version_key(pack.version) <= _version_key(current.version):
        return _wrapped(
            pack.display,
            pack.id,
            pack.version,
            f"The management pack {pack.id} version {pack.version} is not newer than the installed version "
            f"{current.version}.",
        )
    return None


@handles("Import-ScomManagementPack")
def _import(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    try:
        file_name = text_param(run, "FileName", r"^[A-Za-z0-9_.-]{1,200}$")
        expected = text_param(run, "Sha256", r"^[0-9a-fA-F]{64}$")
        name = text_param(run, "Name", _MP_ID)
        text_param(run, "Version", _VERSION)
    except BindingError as exc:
        return ScriptOutcome(failure=str(exc))
    path = f"{STAGING}\\{file_name}"
    content = ctx.host.files.get(path)
    if content is None:
        return ScriptOutcome(
            failure=f'Exception calling "ReadAllBytes" with "1" argument(s): "Could not find file \'{path}\'."'
        )
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected.lower():
        return ScriptOutcome(
            failure=f"Import-ScomManagementPack: {path} is not the file procaudit staged (SHA-256 {actual}); "
            "nothing was imported"
        )
    server = _server(ctx)
    if isinstance(server, ScriptOutcome):
        return server
    before = _find(server, name)
    imported = False
    refusal = None
    if not what_if(run):
        pack = _read_pack(content)
        refusal = _refusal(server, pack)
        if refusal is None and pack is not None:
            now = datetime.now(UTC)
            server.management_packs[pack.id] = InstalledMp(
                id=pack.id,
                version=pack.version,
                sealed=False,
                display_name=pack.display,
                imported=now,
                xml=content.decode("utf-8-sig"),
                first_imported=(before.first_imported or before.imported) if before is not None else now,
            )
            imported = True
    after = _find(server, name)
    result = {
        "Name": name,
        "Path": path,
        "PreviousVersion": before.version if before else None,
        "InstalledVersion": after.version if after else None,
        "Imported": imported,
        "Refusal": refusal,
    }
    return ScriptOutcome(output=[ps_json(result)])


# --- alerts --------------------------------------------------------------------------------------------------------


@dataclass
class LabAlert:
    """An alert as Get-SCOMAlert shows it."""

    id: str
    name: str
    description: str
    computer_name: str
    time_raised: datetime
    repeat_count: int
    severity: str


def _params(event: RecordedEvent) -> dict[int, str]:
    return {index + 1: event.fields[name] for index, name in enumerate(FIELDS) if name in event.fields}


def _value(expression: etree._Element, host: LabHost, event: RecordedEvent) -> tuple[str | None, str]:
    """A ValueExpression's value and type: an XPathQuery into the event data, or a literal Value."""
    query = expression.find("XPathQuery")
    if query is not None:
        path = (query.text or "").strip()
        kind = query.get("Type", "String")
        if path == "EventDisplayNumber":
            return str(event.event_id), kind
        param = re.fullmatch(r"Params/Param\[(\d+)\]", path)
        if param:
            return _params(event).get(int(param.group(1))), kind
        if path == "LoggingComputer":
            return _computer(host), kind
        raise ValueError(f"the lab does not model XPathQuery {path!r}")
    literal = expression.find("Value")
    if literal is None:
        raise ValueError("ValueExpression without XPathQuery or Value")
    return literal.text or "", literal.get("Type", "String")


@lru_cache(maxsize=256)
def scom_pattern(pattern: str) -> re.Pattern[str] | None:
    """A ``RegExExpression`` pattern as the expression filter reads it, limited to SCOM's documented subset
    (KB2702651, ``procaudit.detections.scom_regex``): an optional leading ``(?i)``, then only subset constructs.
    ``None`` for anything else (``\\d``, lookarounds, inline groups elsewhere ...), which the lab never matches:
    SCOM documents that not every .NET construct works, and the lab does not guess which do.
    """
    flags = 0
    body = pattern
    if body.startswith("(?i)"):
        body, flags = body[len("(?i)") :], re.IGNORECASE
    try:
        return re.compile(scom_regex.canonical(body), flags)
    except (scom_regex.RegexSubsetError, re.error):
        return None


def _evaluate(expression: etree._Element, host: LabHost, event: RecordedEvent) -> bool:
    """SCOM's ExpressionFilter grammar over one event (what System.ExpressionFilter evaluates)."""
    (node,) = list(expression)
    if node.tag == "And":
        return all(_evaluate(child, host, event) for child in node.iterfind("Expression"))
    if node.tag == "Or":
        return any(_evaluate(child, host, event) for child in node.iterfind("Expression"))
    if node.tag == "Not":
        return not _evaluate(node.find("Expression"), host, event)
    if node.tag == "SimpleExpression":
        left, right = node.iterfind("ValueExpression")
        (a, kind), (b, _) = _value(left, host, event), _value(right, host, event)
        if a is None or b is None:
            return False
        if kind in ("Integer", "UnsignedInteger"):
            x, y = int(a), int(b)
            return {"Equal": x == y, "NotEqual": x != y, "Greater": x > y, "Less": x < y}[node.findtext("Operator")]
        return {"Equal": a == b, "NotEqual": a != b}[node.findtext("Operator") or ""]
    if node.tag == "RegExExpression":
        value, _ = _value(node.find("ValueExpression"), host, event)
        pattern = node.findtext("Pattern") or ""
        operator = node.findtext("Operator")
        if value is None:
            return False  # the event has no such parameter: no operator holds
        if operator in ("MatchesRegularExpression", "DoesNotMatchRegularExpression"):
            compiled = scom_pattern(pattern)
            if compiled is None:
                return False  # outside the documented subset: what SCOM does with it is not known, so never
            found = compiled.search(value) is not None
            return found if operator == "MatchesRegularExpression" else not found
        if operator == "ContainsSubstring":
            return pattern in value
        if operator == "DoesNotContainSubstring":
            return pattern not in value
        raise ValueError(f"the lab does not model RegExExpression operator {operator!r}")
    raise ValueError(f"the lab does not model expression {node.tag!r}")


def _computer(host: LabHost) -> str:
    return f"{host.os.computer_name}.{host.os.domain}"


def _substitute(template: str, host: LabHost, event: RecordedEvent) -> str:
    """Fill ``$Data/...$`` references as the alert write action does."""

    def one(match: re.Match[str]) -> str:
        reference = match.group(1)
        if reference == "LoggingComputer":
            return _computer(host)
        param = re.fullmatch(r"Params/Param\[(\d+)\]", reference)
        if param:
            return _params(event).get(int(param.group(1)), "")
        return ""

    return re.sub(r"\$Data/([^$]+)\$", one, template)


def _format(template: str, values: list[str]) -> str:
    """.NET String.Format for alert descriptions: ``{n}`` is parameter n+1, ``{{`` and ``}}`` are braces."""
    return re.sub(
        r"\{\{|\}\}|\{(\d+)\}",
        lambda m: "{" if m.group(0) == "{{" else "}" if m.group(0) == "}}" else values[int(m.group(1))],
        template,
    )


def _agents(world: LabWorld, group: str) -> list[LabHost]:
    return [
        host
        for host in world.hosts.values()
        if host.services.scom_agent == "running" and group in host.services.scom_management_groups
    ]


def alerts_for_rule(world: LabWorld, server: ScomServer, mp: InstalledMp, rule: etree._Element) -> list[LabAlert]:
    """Every alert ``rule`` of ``mp`` has raised in this management group (see the module docstring)."""
    if rule.get("Enabled", "true") == "false":
        return []
    root = rule.getroottree().getroot()
    expression = rule.find("DataSources/DataSource/Expression")
    action = rule.find("WriteActions/WriteAction")
    if expression is None or action is None:
        return []
    message = re.search(r'\$MPElement\[Name="([^"]+)"\]\$', action.findtext("AlertMessageId") or "")
    display = (
        root.find(f'LanguagePacks/LanguagePack/DisplayStrings/DisplayString[@ElementID="{message.group(1)}"]')
        if message
        else None
    )
    name = display.findtext("Name") if display is not None else None
    description = display.findtext("Description") if display is not None else None
    parameters = [p.text or "" for p in action.iterfind("AlertParameters/*")]
    suppression = [s.text or "" for s in action.iterfind("Suppression/SuppressionValue")]
    severity = _SEVERITY.get(action.findtext("Severity") or "", "Error")
    # The rule watches the Security log from the moment agents receive it; an upgrade keeps it running.
    active_since = mp.first_imported or mp.imported
    groups: dict[tuple[str, ...], list[tuple[LabHost, RecordedEvent]]] = {}
    for host in _agents(world, server.management_group):
        for event in list(host.events):
            if event.event_id != 4688 or event.time < active_since or not _evaluate(expression, host, event):
                continue
            key = (host.name, *(_substitute(value, host, event) for value in suppression))
            groups.setdefault(key, []).append((host, event))
    alerts = []
    for key, hits in groups.items():
        host, first = min(hits, key=lambda hit: hit[1].time)
        values = [_substitute(parameter, host, first) for parameter in parameters]
        alerts.append(
            LabAlert(
                id=str(uuid.uuid5(_ALERT_NAMESPACE, "|".join((server.management_group, rule.get("ID", ""), *key)))),
                name=name or rule.get("ID", ""),
                description=_format(description or "", values),
                computer_name=host.os.computer_name,
                time_raised=first.time,
                repeat_count=len(hits) - 1,
                severity=severity,
            )
        )
    return sorted(alerts, key=lambda alert: alert.time_raised)


def find_rule(server: ScomServer, rule_id: str) -> tuple[InstalledMp, etree._Element] | None:
    """The installed unsealed pack holding rule ``rule_id``, and the rule element."""
    for mp in server.management_packs.values():
        if mp.xml is None:
            continue
        root = etree.fromstring(mp.xml.encode("utf-8"))
        for rule in root.iterfind("Monitoring/Rules/Rule"):
            if (rule.get("ID") or "").lower() == rule_id.lower():
                return mp, rule
    return None


@handles("Get-ScomCanaryAlert")
def _canary_alert(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    try:
        rule_name = text_param(run, "RuleName", _MP_ID)
        nonce = text_param(run, "Nonce", r"^[0-9a-f]{32}$")
        since = text_param(run, "Since", _SINCE) if run.parameters.get("Since") is not None else None
    except BindingError as exc:
        return ScriptOutcome(failure=str(exc))
    if not re.fullmatch(r"[0-9a-f]{32}", nonce):  # the script's -cnotmatch check (ValidatePattern ignores case)
        return ScriptOutcome(failure=f"Nonce '{nonce}' is not 32 lower-case hexadecimal characters.")
    not_before = datetime.strptime(since[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC) if since else None
    server = _server(ctx)
    if isinstance(server, ScriptOutcome):
        return server
    found = find_rule(server, rule_name)
    alerts: list[dict[str, Any]] = []
    if found is not None:
        mp, rule = found
        marker = MARKER_PREFIX + nonce
        for alert in alerts_for_rule(ctx.world, server, mp, rule):
            if not_before is not None and alert.time_raised < not_before:
                continue
            if marker in alert.description:  # ordinal: case-sensitive, as the script's IndexOf(..., Ordinal)
                alerts.append(
                    {
                        "Id": alert.id,
                        "Name": alert.name,
                        "ComputerName": alert.computer_name,
                        "TimeRaised": alert.time_raised.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                        "ResolutionState": 0,
                        "RepeatCount": alert.repeat_count,
                        "Severity": alert.severity,
                    }
                )
    result = {
        "RuleName": rule_name,
        "RuleFound": found is not None,
        "RuleEnabled": found is not None and found[1].get("Enabled", "true") != "false",
        "Alerts": alerts,
    }
    return ScriptOutcome(output=[ps_json(result)])
