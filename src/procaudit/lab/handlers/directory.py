"""Lab implementations of the domain-controller scripts and the policy refresh (``procaudit.lab.directory``).

The DC scripts run only on a lab host of the ``dc`` profile: elsewhere the GroupPolicy and ActiveDirectory
modules are missing and PowerShell fails on the first of their cmdlets the script calls, with the
CommandNotFoundException message the captures show. Cmdlet failures carry the real cmdlets' messages
(``procaudit.lab.directory.CmdletError``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Final

from lxml import etree

from procaudit.errors import ParseError
from procaudit.gpo.payload import PAYLOAD_FILES, normalize_relative, read_payload
from procaudit.lab.directory import AUTHENTICATED_USERS_SID, CmdletError, Directory, LabGpo, directory_of
from procaudit.lab.handlers.common import BindingError, as_list, mandatory, validate_pattern, validate_set, what_if
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun

BACKUP_ID: Final = r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$"
GROUP: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
MEMBER: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,14}\$$"
RELATIVE_PATHS: Final = (
    "Backup.xml",
    "bkupInfo.xml",
    "DomainSysvol\\GPO\\Machine\\registry.pol",
    "DomainSysvol\\GPO\\Machine\\microsoft\\windows nt\\Audit\\audit.csv",
    "DomainSysvol\\GPO\\Machine\\microsoft\\windows nt\\SecEdit\\GptTmpl.inf",
)
DATA_INVALID: Final = "The data is invalid. (Exception from HRESULT: 0x8007000D)"
NS_MANIFEST: Final = "http://www.microsoft.com/GroupPolicy/GPOOperations/Manifest"


def not_recognized(cmdlet: str) -> str:
    return (
        f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
        "and try again."
    )


def _dc(ctx: HandlerContext, first_cmdlet: str) -> Directory:
    if ctx.host.role != "dc":
        raise CmdletError(not_recognized(first_cmdlet))
    return directory_of(ctx.world)


def _run(ctx: HandlerContext, run: ScriptRun, first_cmdlet: str, body: Any) -> ScriptOutcome:
    try:
        directory = _dc(ctx, first_cmdlet)
        with ctx.world.lock:
            document = body(directory, run)
    except (CmdletError, BindingError) as exc:
        return ScriptOutcome(failure=str(exc))
    return ScriptOutcome(output=[ps_json(document)])


def _permissions(gpo: LabGpo) -> list[dict[str, Any]]:
    return [
        {
            "Trustee": p.trustee or None,  # an orphaned SID has no name
            "TrusteeSid": p.sid or None,
            "TrusteeType": p.trustee_type,
            "Permission": p.permission,
            "Inherited": p.inherited,
        }
        for p in gpo.permissions
    ]


# --- Get-ProcAuditGpoState ------------------------------------------------------------------------------------


def _state(directory: Directory, run: ScriptRun) -> dict[str, Any]:
    name = str(mandatory(run, "GpoName"))
    gpo = directory.gpo_by_name(name)
    gpo_doc = None
    if gpo is not None:
        gpo_doc = {
            "Id": gpo.id,
            "DisplayName": gpo.display_name,
            "ComputerDSVersion": gpo.version,
            "ComputerSysvolVersion": gpo.version,
            "Files": [
                {"RelativePath": path, "ContentBase64": base64.b64encode(data).decode("ascii")}
                for path, data in gpo.files.items()
            ],
            "Permissions": _permissions(gpo),
        }
    targets = []
    for dn in as_list(run.parameters.get("Target")):
        try:
            target = directory.require_target(str(dn))
        except CmdletError:
            targets.append({"Target": dn, "Exists": False, "Links": []})
            continue
        links = [
            {
                "GpoId": link.gpo_id,
                "DisplayName": directory.gpos[link.gpo_id].display_name,
                "Enabled": link.enabled,
                "Enforced": link.enforced,
                "Order": link.order,
            }
            for link in directory.links_of(target)
        ]
        targets.append({"Target": dn, "Exists": True, "Links": links})
    groups = []
    for group_name in as_list(run.parameters.get("GroupName")):
        group = directory.group(str(group_name))
        members = sorted(m.upper()[:-1] + "$" for m in group.members) if group else []
        groups.append(
            {
                "Name": group_name,
                "Exists": group is not None,
                "DistinguishedName": group.dn if group else None,
                "Members": members,
            }
        )
    computers = []
    for computer in as_list(run.parameters.get("Computer")):
        account = directory.computers.get(str(computer).lower())
        computers.append(
            {"Name": computer, "Exists": account is not None, "DistinguishedName": account[0] if account else None}
        )
    return {
        "Domain": {"DnsRoot": directory.domain, "DistinguishedName": directory.dn},
        "Gpo": gpo_doc,
        "Targets": targets,
        "Groups": groups,
        "Computers": computers,
    }


@handles("Get-ProcAuditGpoState")
def _get_state(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    return _run(ctx, run, "Get-ADDomain", _state)


# --- Import-ProcAuditGpo --------------------------------------------------------------------------------------


def _import(directory: Directory, run: ScriptRun) -> dict[str, Any]:
    backup_id = validate_pattern("BackupId", [mandatory(run, "BackupId")], BACKUP_ID)[0]
    target_name = str(mandatory(run, "TargetName"))
    paths = validate_set("RelativePath", as_list(mandatory(run, "RelativePath")), RELATIVE_PATHS)
    contents = [str(c) for c in as_list(mandatory(run, "ContentBase64"))]
    digests = validate_pattern("Sha256", as_list(mandatory(run, "Sha256")), r"^[0-9a-f]{64}$")
    if not len(paths) == len(contents) == len(digests):
        raise CmdletError(
            f"RelativePath, ContentBase64 and Sha256 must pair up: {len(paths)}, {len(contents)}, {len(digests)}"
        )
    existed = directory.gpo_by_name(target_name) is not None
    if what_if(run):
        return {"Existed": existed, "Imported": False, "Gpo": None}
    files: dict[str, bytes] = {}
    for path, content, digest in zip(paths, contents, digests, strict=True):
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise CmdletError(
                'Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid Base-64 string '
                "as it contains a non-base 64 character, more than two padding characters, or an illegal character "
                'among the padding characters. "'
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise CmdletError(f"{path} arrived with SHA-256 {actual}, not {digest}; nothing was imported")
        files[path] = data
    # Import-GPO reads bkupInfo.xml for the backup's ID and the payload files Backup.xml lists.
    info = files.get("bkupInfo.xml")
    if info is None or "Backup.xml" not in files:
        raise CmdletError(DATA_INVALID)
    try:
        root = etree.fromstring(info, etree.XMLParser(resolve_entities=False, no_network=True))
        backup_xml_root = etree.fromstring(
            files["Backup.xml"], etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError:
        raise CmdletError(DATA_INVALID) from None
    found_id = (root.findtext(f"{{{NS_MANIFEST}}}ID") or "").strip()
    if found_id.lower() != backup_id.lower() or backup_xml_root is None:
        raise CmdletError(DATA_INVALID)
    payload_files = {normalize_relative(p): d for p, d in files.items() if normalize_relative(p) in PAYLOAD_FILES}
    try:
        payload = read_payload(payload_files)
    except ParseError:
        raise CmdletError(DATA_INVALID) from None
    gpo, created = directory.import_gpo(target_name, payload, payload_files)
    return {
        "Existed": not created,
        "Imported": True,
        "Gpo": {
            "Id": gpo.id,
            "DisplayName": gpo.display_name,
            "ComputerDSVersion": gpo.version,
            "ModificationTime": gpo.modified.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
        },
    }


@handles("Import-ProcAuditGpo")
def _import_gpo(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    return _run(ctx, run, "Get-GPO", _import)


# --- Set-ProcAuditGpoFilter -----------------------------------------------------------------------------------


def _filter(directory: Directory, run: ScriptRun) -> dict[str, Any]:
    gpo = directory.require_gpo(str(mandatory(run, "GpoName")))
    raw_group = run.parameters.get("GroupName")
    group_name = validate_pattern("GroupName", [raw_group], GROUP)[0] if raw_group else ""
    path = str(run.parameters.get("GroupPath") or "") or None
    everyone = validate_set(
        "AuthenticatedUsers", [run.parameters.get("AuthenticatedUsers") or "GpoRead"], ("GpoRead", "GpoApply", "None")
    )[0]
    remove = bool(run.parameters.get("Remove"))
    everyone_only = bool(run.parameters.get("EveryoneOnly"))
    if everyone_only and (group_name or path or remove or run.parameters.get("RemoveGroup")):
        raise CmdletError(
            "-EveryoneOnly sets only Authenticated Users: "
            "GroupName, GroupPath, Remove and RemoveGroup do not go with it"
        )
    if not everyone_only and not group_name:
        raise CmdletError("GroupName is required unless -EveryoneOnly is given")
    before = _permissions(gpo)
    skip = what_if(run)
    group = None if everyone_only else directory.group(group_name)
    created = deleted = False
    if everyone_only:
        pass  # nothing but Authenticated Users, below
    elif not remove:
        if group is None and not skip:
            directory.new_group(group_name, path)
            created = True
        if gpo.permission_of(group_name) != "GpoApply" and not skip:
            directory.set_permission(gpo, group_name, "Group", "GpoApply", replace=False)
    else:
        if gpo.permission_of(group_name) is not None and not skip:
            directory.set_permission(gpo, group_name, "Group", "None", replace=True)
        if run.parameters.get("RemoveGroup") and group is not None and not group.members and not skip:
            directory.remove_group(group_name)
            deleted = True
    # The script finds Authenticated Users by its SID and sets it by the name the SID translates to.
    everyone_now = next((p.permission for p in gpo.permissions if p.sid == AUTHENTICATED_USERS_SID), None)
    if everyone_now != (None if everyone == "None" else everyone) and not skip:
        directory.set_permission(gpo, directory.authenticated_users, "WellKnownGroup", everyone, replace=True)
    return {
        "GroupFound": group is not None,
        "GroupCreated": created,
        "GroupDeleted": deleted,
        "Before": before,
        "After": _permissions(gpo),
    }


@handles("Set-ProcAuditGpoFilter")
def _set_filter(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    return _run(ctx, run, "Get-GPPermission", _filter)


# --- Set-ProcAuditGpoLink -------------------------------------------------------------------------------------


def _link(directory: Directory, run: ScriptRun) -> dict[str, Any]:
    name = str(mandatory(run, "GpoName"))
    targets = validate_pattern("Target", as_list(mandatory(run, "Target")), r"^(OU|DC)=")
    remove = bool(run.parameters.get("Remove"))
    disable = bool(run.parameters.get("Disable"))
    skip = what_if(run)
    gpo = directory.gpo_by_name(name)

    def state(target: str) -> str:
        link = next((lk for lk in directory.links_of(target) if gpo is not None and lk.gpo_id == gpo.id), None)
        return "absent" if link is None else "enabled" if link.enabled else "disabled"

    rows = []
    for raw in targets:
        target = directory.require_target(raw)  # Get-GPInheritance fails on a target that does not exist
        before = state(target)
        if not skip:
            if remove and before != "absent":
                directory.remove_link(directory.require_gpo(name), target)
            elif disable and not remove:
                if before == "enabled":
                    link = next(lk for lk in directory.links_of(target) if gpo is not None and lk.gpo_id == gpo.id)
                    link.enabled = False
            elif not remove and before == "absent":
                directory.new_link(directory.require_gpo(name), target)
            elif not remove and before == "disabled":
                link = next(lk for lk in directory.links_of(target) if gpo is not None and lk.gpo_id == gpo.id)
                link.enabled = True
        rows.append({"Target": raw, "Before": before, "After": state(target)})
    return {"Links": rows}


@handles("Set-ProcAuditGpoLink")
def _set_link(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    return _run(ctx, run, "Get-GPInheritance", _link)


# --- Set-ProcAuditGroupMember ---------------------------------------------------------------------------------


def _members(directory: Directory, run: ScriptRun) -> dict[str, Any]:
    group_name = validate_pattern("GroupName", [mandatory(run, "GroupName")], GROUP)[0]
    members = validate_pattern("Member", as_list(mandatory(run, "Member")), MEMBER)
    remove = bool(run.parameters.get("Remove"))
    group = directory.group(group_name)
    if group is None:
        if not remove:
            raise directory.not_found(group_name)
        return {"Group": group_name, "Missing": True, "Before": [], "Changed": [], "After": []}

    def listed() -> list[str]:
        return sorted(m.upper()[:-1] + "$" for m in group.members)

    before = listed()
    present = {b.lower() for b in before}
    todo = [m for m in members if (m.lower() in present) == remove]
    if todo and not what_if(run):
        (directory.remove_member if remove else directory.add_member)(group_name, todo)
    return {"Group": group_name, "Missing": False, "Before": before, "Changed": todo, "After": listed()}


@handles("Set-ProcAuditGroupMember")
def _set_members(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    return _run(ctx, run, "Get-ADGroupMember", _members)


# --- Invoke-ProcAuditPolicyRefresh (any host) -----------------------------------------------------------------

_KLIST: Final = (
    "\nCurrent LogonId is 0:0x3e7\nTargeted LogonId is 0:0x3e7\n\tDeleting all tickets:\n\tTicket(s) purged!"
)
_GPUPDATE: Final = "Updating policy...\n\nComputer Policy update has completed successfully.\n"


def _launch_failure(program: str) -> str:
    """Invoke-Native's output for a program that cannot start: ``&`` throws ApplicationFailedException, here
    with the Win32 text of ERROR_ACCESS_DISABLED_BY_POLICY (1260, an AppLocker or SRP block)."""
    return (
        f"{program} did not run: Program '{program}' failed to run: This program is blocked by group policy. "
        "For more information, contact your system administrator"
    )


@handles("Invoke-ProcAuditPolicyRefresh")
def _refresh(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    host = ctx.host
    skip = what_if(run)
    klist: tuple[int | None, str | None] = (None, None)
    gpupdate: tuple[int | None, str | None] = (None, None)
    if not skip:
        directory = directory_of(ctx.world)
        klist = (-1, _launch_failure("klist.exe")) if "klist.exe" in host.unlaunchable else (0, _KLIST)
        if "gpupdate.exe" in host.unlaunchable:
            # The script throws: the tickets are purged (when klist ran) but policy is not refreshed.
            if klist[0] == 0:
                with ctx.world.lock:
                    directory.purge_tickets(host)
            return ScriptOutcome(failure=f"gpupdate.exe failed (exit code -1): {_launch_failure('gpupdate.exe')}")
        gpupdate = (0, _GPUPDATE)
        with ctx.world.lock:
            if klist[0] == 0:
                directory.purge_tickets(host)
            directory.refresh(host)
    return ScriptOutcome(
        output=[
            ps_json(
                {
                    "ComputerName": host.os.computer_name,
                    "KlistExitCode": klist[0],
                    "KlistOutput": klist[1],
                    "GpupdateExitCode": gpupdate[0],
                    "GpupdateOutput": gpupdate[1],
                    "WhatIf": skip,
                }
            )
        ]
    )
