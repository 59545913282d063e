"""The lab's Active Directory and Group Policy: a domain the ``dc`` hosts serve, and how member hosts apply it.

Modelled (sources: ../shared/reference/gpo_audit.md §7, the GroupPolicy captures in
../shared/data/windows/08_grouppolicy_module, Microsoft's documentation of the cmdlets):

* The domain ``corp.example`` (``DC=corp,DC=example``) with OUs ``Servers``, ``Workstations`` and
  ``Domain Controllers``; a computer account per lab host (``<COMPUTERNAME>$``) in the OU of its role.
* Security groups and their members (``New-ADGroup``, ``Add-ADGroupMember``, ``Remove-ADGroupMember``).
* GPOs: ``Import-GPO -CreateIfNeeded`` creates or overwrites a GPO from a backup (its settings are read from
  the backup's payload files with ``procaudit.gpo.payload``; files that do not parse fail with
  "The data is invalid. (Exception from HRESULT: 0x8007000D)"); a new GPO gets GPMC's default permissions
  (Authenticated Users GpoApply, Domain Admins / Enterprise Admins / SYSTEM GpoEditDeleteModifySecurity,
  ENTERPRISE DOMAIN CONTROLLERS GpoRead); ``Set-GPPermission``; ``New-GPLink`` (which fails with
  "The GPO named '...' is already linked to a Scope of Management with Path '...'" when it is), ``Set-GPLink``,
  ``Remove-GPLink``.
* A member host applies a GPO at its refresh when an enabled link targets its OU or the domain, and its
  computer - through the groups in its Kerberos ticket, which change only after ``klist -li 0x3e7 purge`` or a
  reboot - has GpoApply (Authenticated Users, Domain Computers / Domain Controllers, a group it is in).
  A GPO linked to an OU takes precedence over the lab's pre-existing domain GPOs (linked at the domain); one
  linked at the domain comes after them (New-GPLink appends the link last).
* When a GPO stops applying: registry policy values it set under a ``...\\Policies\\...`` key are removed by
  the registry extension, and the values it displaced come back; the advanced audit policy it applied stays
  in LSA ("tattooed") and so does SCENoApplyLegacyAuditPolicy from its security template (the Lsa key is not a
  Policies key; UNVERIFIED whether the security extension's undo table restores it on real Windows); a
  Security log size from policy gives way to the log's own configured size.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from procaudit.gpo.payload import GpoPayload
from procaudit.lab import eventlog
from procaudit.lab.model import (
    AUDIT_KEY,
    EVENTLOG_POLICY_KEY,
    FORCE_VALUE,
    LSA_KEY,
    GpoSetting,
    LabHost,
    LabWorld,
)

DOMAIN: Final = "corp.example"
AUTHENTICATED_USERS: Final = "Authenticated Users"
DOMAIN_COMPUTERS: Final = "Domain Computers"
DOMAIN_CONTROLLERS: Final = "Domain Controllers"
ENTERPRISE_DCS: Final = "ENTERPRISE DOMAIN CONTROLLERS"
AUTHENTICATED_USERS_SID: Final = "S-1-5-11"
# The lab domain's SID; well-known trustees have fixed SIDs, domain groups the domain SID and a RID.
DOMAIN_SID: Final = "S-1-5-21-3623811015-3361044348-30300820"
_WELL_KNOWN_SIDS: Final = {ENTERPRISE_DCS.lower(): "S-1-5-9", "system": "S-1-5-18"}
_DOMAIN_RIDS: Final = {
    "domain admins": 512,
    "domain computers": 515,
    "domain controllers": 516,
    "enterprise admins": 519,
}
_ROLE_OU: Final = {"dc": "Domain Controllers", "workstation": "Workstations"}
_KNOWN_KEYS: Final = (AUDIT_KEY, LSA_KEY, EVENTLOG_POLICY_KEY)
_FORCE_PATH: Final = r"MACHINE\System\CurrentControlSet\Control\Lsa\SCENoApplyLegacyAuditPolicy"
PERMISSION_LEVELS: Final = ("GpoRead", "GpoApply", "GpoEdit", "GpoEditDeleteModifySecurity", "None")


class CmdletError(Exception):
    """A terminating error with the message the real cmdlet writes."""


def domain_dn(domain: str = DOMAIN) -> str:
    return ",".join(f"DC={part}" for part in domain.split("."))


def ou_dn(name: str, domain: str = DOMAIN) -> str:
    return f"OU={name},{domain_dn(domain)}"


@dataclass
class AdGroup:
    name: str
    dn: str
    members: set[str] = field(default_factory=set)
    """Lower-case sAMAccountNames (``lab-ready-01$``)."""
    sid: str = ""


@dataclass
class GpoPermission:
    trustee: str
    trustee_type: str
    permission: str
    inherited: bool = False
    sid: str = ""


@dataclass
class LabGpo:
    id: str
    """Lower-case GUID without braces, as Get-GPO's Id prints it."""
    display_name: str
    payload: GpoPayload
    files: dict[str, bytes]
    permissions: list[GpoPermission]
    created: datetime
    modified: datetime
    version: int = 1

    @property
    def braced(self) -> str:
        return "{" + self.id.upper() + "}"

    def permission_of(self, trustee: str) -> str | None:
        return next((p.permission for p in self.permissions if p.trustee.lower() == trustee.lower()), None)


@dataclass
class GpoLink:
    gpo_id: str
    target: str
    enabled: bool = True
    enforced: bool = False
    order: int = 1


@dataclass
class Applied:
    """What one GPO did to one host, to undo when it stops applying."""

    displaced_advanced: dict[str, GpoSetting | None] = field(default_factory=dict)
    displaced_registry: dict[tuple[str, str], GpoSetting | None] = field(default_factory=dict)
    local_log_size: int | None = None


@dataclass
class Directory:
    domain: str = DOMAIN
    ous: set[str] = field(default_factory=set)
    computers: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Lower-case sAMAccountName -> (DN, lab host name)."""
    groups: dict[str, AdGroup] = field(default_factory=dict)
    gpos: dict[str, LabGpo] = field(default_factory=dict)
    links: list[GpoLink] = field(default_factory=list)
    tickets: dict[str, frozenset[str]] = field(default_factory=dict)
    """Lab host -> the groups its computer's Kerberos ticket carries (refreshed by a purge)."""
    applied: dict[str, dict[str, Applied]] = field(default_factory=dict)
    authenticated_users: str = AUTHENTICATED_USERS
    """The name S-1-5-11 translates to on this DC: localized Windows calls it otherwise (German:
    "Authentifizierte Benutzer"); Get-GPPermission reports the translated name."""
    next_rid: int = 1103

    # -- lookups --------------------------------------------------------------------------------------
    @property
    def dn(self) -> str:
        return domain_dn(self.domain)

    def not_found(self, identity: str) -> CmdletError:
        return CmdletError(f"Cannot find an object with identity: '{identity}' under: '{self.dn}'.")

    def group(self, name: str) -> AdGroup | None:
        return self.groups.get(name.lower())

    def gpo_by_name(self, name: str) -> LabGpo | None:
        return next((g for g in self.gpos.values() if g.display_name.lower() == name.lower()), None)

    def require_gpo(self, name: str) -> LabGpo:
        gpo = self.gpo_by_name(name)
        if gpo is None:
            raise CmdletError(f"The GPO named '{name}' was not found in the {self.domain} domain.")
        return gpo

    def require_target(self, target: str) -> str:
        if target.lower() == self.dn.lower():
            return self.dn
        match = next((ou for ou in self.ous if ou.lower() == target.lower()), None)
        if match is None:
            raise self.not_found(target)
        return match

    def links_of(self, target: str) -> list[GpoLink]:
        return sorted((lk for lk in self.links if lk.target.lower() == target.lower()), key=lambda lk: lk.order)

    def sid_of(self, trustee: str) -> str:
        """The SID of a trustee the lab knows ('' for one it does not)."""
        name = trustee.lower()
        if name == self.authenticated_users.lower():
            return AUTHENTICATED_USERS_SID
        if name in _WELL_KNOWN_SIDS:
            return _WELL_KNOWN_SIDS[name]
        if name in _DOMAIN_RIDS:
            return f"{DOMAIN_SID}-{_DOMAIN_RIDS[name]}"
        group = self.groups.get(name)
        return group.sid if group is not None else ""

    def memberships(self, sam: str) -> frozenset[str]:
        return frozenset(g.name for g in self.groups.values() if sam.lower() in g.members)

    # -- AD cmdlets -----------------------------------------------------------------------------------
    def new_group(self, name: str, path: str | None) -> AdGroup:
        if name.lower() in self.groups:
            raise CmdletError("The specified group already exists")
        container = path or f"CN=Users,{self.dn}"
        if path is not None and path.lower() != f"cn=users,{self.dn}".lower():
            container = self.require_target(path)
        group = AdGroup(name=name, dn=f"CN={name},{container}", sid=f"{DOMAIN_SID}-{self.next_rid}")
        self.next_rid += 1
        self.groups[name.lower()] = group
        return group

    def remove_group(self, name: str) -> None:
        if self.groups.pop(name.lower(), None) is None:
            raise self.not_found(name)
        # The GPOs' entries for it stay, by SID: a SID that resolves to no name any more (GPMC's "Unknown").
        for gpo in self.gpos.values():
            for permission in gpo.permissions:
                if permission.trustee.lower() == name.lower():
                    permission.trustee, permission.trustee_type = "", "Unknown"

    def add_member(self, name: str, members: list[str]) -> None:
        group, computers = self._membership(name, members)
        group.members.update(computers)

    def remove_member(self, name: str, members: list[str]) -> None:
        group, computers = self._membership(name, members)
        group.members.difference_update(computers)

    def _membership(self, name: str, members: list[str]) -> tuple[AdGroup, list[str]]:
        """The group and its would-be members (lower-case), as Add/Remove-ADGroupMember resolve them first."""
        group = self.group(name)
        if group is None:
            raise self.not_found(name)
        for member in members:
            if member.lower() not in self.computers:
                raise self.not_found(member)
        return group, [m.lower() for m in members]

    # -- GroupPolicy cmdlets -------------------------------------------------------------------------
    def import_gpo(self, target_name: str, payload: GpoPayload, files: dict[str, bytes]) -> tuple[LabGpo, bool]:
        """``Import-GPO -TargetName -CreateIfNeeded``: (the GPO, whether it was created)."""
        moment = datetime.now(UTC)
        gpo = self.gpo_by_name(target_name)
        if gpo is not None:
            gpo.payload, gpo.files, gpo.modified = payload, dict(files), moment
            gpo.version += 1
            return gpo, False
        gpo = _new_gpo(str(uuid.uuid4()), target_name, payload, files, moment, self.authenticated_users)
        self.gpos[gpo.id] = gpo
        return gpo, True

    def set_permission(self, gpo: LabGpo, trustee: str, trustee_type: str, level: str, *, replace: bool) -> None:
        """``Set-GPPermission``: without -Replace a lower level than the current one is an error."""
        if level not in PERMISSION_LEVELS:
            raise CmdletError(f"Cannot bind parameter 'PermissionLevel'. Cannot convert value \"{level}\".")
        known = (
            trustee.lower() in _WELL_KNOWN_SIDS
            or trustee.lower() == self.authenticated_users.lower()
            or trustee.lower() in self.groups
            or trustee.lower()
            in (
                DOMAIN_COMPUTERS.lower(),
                DOMAIN_CONTROLLERS.lower(),
                "domain admins",
                "enterprise admins",
            )
        )
        if not known:
            raise CmdletError(f"Trustee '{trustee}' could not be found.")
        current = next((p for p in gpo.permissions if p.trustee.lower() == trustee.lower()), None)
        if level == "None":
            if current is not None:
                gpo.permissions.remove(current)
            return
        if current is None:
            gpo.permissions.append(GpoPermission(trustee, trustee_type, level, sid=self.sid_of(trustee)))
            return
        if not replace and PERMISSION_LEVELS.index(level) < PERMISSION_LEVELS.index(current.permission):
            raise CmdletError(
                f"The permission level {level} is lower than the current level {current.permission} for "
                f"'{trustee}'; use -Replace to lower it."
            )
        current.permission = level

    def new_link(self, gpo: LabGpo, target: str) -> GpoLink:
        target = self.require_target(target)
        if any(lk.gpo_id == gpo.id for lk in self.links_of(target)):
            raise CmdletError(
                f"The GPO named '{gpo.display_name}' is already linked to a Scope of Management with Path '{target}'."
            )
        link = GpoLink(gpo_id=gpo.id, target=target, order=len(self.links_of(target)) + 1)
        self.links.append(link)
        return link

    def remove_link(self, gpo: LabGpo, target: str) -> None:
        target = self.require_target(target)
        link = next((lk for lk in self.links_of(target) if lk.gpo_id == gpo.id), None)
        if link is None:
            raise CmdletError(
                f"The GPO named '{gpo.display_name}' is not linked to a Scope of Management with Path '{target}'."
            )
        self.links.remove(link)
        for other in self.links_of(target):
            if other.order > link.order:
                other.order -= 1

    # -- the member side ------------------------------------------------------------------------------
    def purge_tickets(self, host: LabHost) -> None:
        """``klist -li 0x3e7 purge``: the next ticket carries the computer's current groups."""
        self.tickets[host.name] = self.memberships(_sam(host))

    def _principals(self, host: LabHost) -> set[str]:
        sam = _sam(host)
        groups = set(self.tickets.get(host.name, frozenset()))
        builtin = {DOMAIN_CONTROLLERS, ENTERPRISE_DCS} if host.role == "dc" else {DOMAIN_COMPUTERS}
        return {p.lower() for p in {sam, self.authenticated_users, *builtin, *groups}}

    def applies_to(self, gpo: LabGpo, host: LabHost) -> bool:
        dn = self.computers.get(_sam(host).lower(), ("", ""))[0].lower()
        linked = any(lk.gpo_id == gpo.id and lk.enabled and dn.endswith(lk.target.lower()) for lk in self.links)
        if not linked:
            return False
        principals = self._principals(host)
        granted = {p.permission for p in gpo.permissions if p.trustee.lower() in principals}
        # GpoApply includes read; a computer that cannot read the GPO cannot apply it (MS16-072).
        return "GpoApply" in granted

    def _link_level(self, gpo: LabGpo, host: LabHost) -> str:
        dn = self.computers.get(_sam(host).lower(), ("", ""))[0].lower()
        targets = [
            lk.target for lk in self.links if lk.gpo_id == gpo.id and lk.enabled and dn.endswith(lk.target.lower())
        ]
        return "ou" if any(t.lower() != self.dn.lower() for t in targets) else "domain"

    def refresh(self, host: LabHost) -> list[str]:
        """``gpupdate /target:computer /force`` on ``host``: apply the GPOs that apply, undo those that stopped.

        Returns the display names of the procaudit-modelled GPOs applied.
        """
        current = self.applied.setdefault(host.name, {})
        wanted = [g for g in self.gpos.values() if self.applies_to(g, host)]
        # Recomputed from scratch, as the client does: what applied before is undone (which brings back what it
        # displaced), then what applies now is applied in link order.
        for gpo_id in reversed(list(current)):
            self._unapply(host, self.gpos.get(gpo_id), current.pop(gpo_id))
        for gpo in wanted:
            record = current.setdefault(gpo.id, Applied())
            self._apply(host, gpo, record)
        host.refresh_policy()
        eventlog.note_state_change(host)
        return [g.display_name for g in wanted]

    def _apply(self, host: LabHost, gpo: LabGpo, record: Applied) -> None:
        def setting_of(value: int) -> GpoSetting:
            return GpoSetting(gpo.braced, gpo.display_name, value)

        wins = self._link_level(gpo, host) == "ou"
        policy = host.policy
        for guid, value in gpo.payload.audit.items():
            existing = policy.domain_advanced.get(guid)
            if existing is not None and existing.gpo_guid != gpo.braced and not wins:
                continue
            if guid not in record.displaced_advanced:
                record.displaced_advanced[guid] = existing if existing and existing.gpo_guid != gpo.braced else None
            policy.domain_advanced[guid] = setting_of(0 if value == 4 else value)
        registry: dict[tuple[str, str], int] = {}
        for (key, name), data in gpo.payload.registry.items():
            if isinstance(data, int):
                registry[(_model_key(key), name)] = data
        for path, data in gpo.payload.security_registry.items():
            if path.lower() == _FORCE_PATH.lower() and isinstance(data, int):
                registry[(LSA_KEY, FORCE_VALUE)] = data
        for (key, name), number in registry.items():
            existing = policy.domain_registry.get((key, name))
            if existing is not None and existing.gpo_guid != gpo.braced and not wins:
                continue
            if (key, name) not in record.displaced_registry:
                record.displaced_registry[(key, name)] = (
                    existing if existing and existing.gpo_guid != gpo.braced else None
                )
            if (key, name) == (EVENTLOG_POLICY_KEY, "MaxSize") and record.local_log_size is None:
                record.local_log_size = host.security_log.max_size
            policy.domain_registry[(key, name)] = setting_of(number)

    def _unapply(self, host: LabHost, gpo: LabGpo | None, record: Applied) -> None:
        policy = host.policy
        for guid, displaced in record.displaced_advanced.items():
            if displaced is None:
                policy.domain_advanced.pop(guid, None)  # LSA keeps the value: advanced audit policy is tattooed
            else:
                policy.domain_advanced[guid] = displaced
        for (key, name), displaced in record.displaced_registry.items():
            if displaced is not None:
                policy.domain_registry[(key, name)] = displaced
                continue
            policy.domain_registry.pop((key, name), None)
            if "\\policies\\" in key.lower():
                host.registry.get(key, {}).pop(name, None)  # the registry extension removes its policy values
        if record.local_log_size is not None:
            host.security_log.max_size = record.local_log_size


def _sam(host: LabHost) -> str:
    return host.os.computer_name + "$"


def _model_key(key: str) -> str:
    """A registry.pol key (``HKLM\\Software\\...``) in the spelling the host model uses."""
    return next((known for known in _KNOWN_KEYS if known.lower() == key.lower()), key)


def _new_gpo(
    gpo_id: str,
    name: str,
    payload: GpoPayload,
    files: dict[str, bytes],
    moment: datetime,
    authenticated_users: str = AUTHENTICATED_USERS,
) -> LabGpo:
    """A GPO with the permissions GPMC gives a new one."""
    return LabGpo(
        id=gpo_id,
        display_name=name,
        payload=payload,
        files=dict(files),
        created=moment,
        modified=moment,
        permissions=[
            GpoPermission(authenticated_users, "WellKnownGroup", "GpoApply", sid=AUTHENTICATED_USERS_SID),
            GpoPermission("Domain Admins", "Group", "GpoEditDeleteModifySecurity", sid=f"{DOMAIN_SID}-512"),
            GpoPermission("Enterprise Admins", "Group", "GpoEditDeleteModifySecurity", sid=f"{DOMAIN_SID}-519"),
            GpoPermission(ENTERPRISE_DCS, "WellKnownGroup", "GpoRead", sid="S-1-5-9"),
            GpoPermission("SYSTEM", "WellKnownGroup", "GpoEditDeleteModifySecurity", sid="S-1-5-18"),
        ],
    )


# Every domain has these two, with these GUIDs, linked at the domain root and to the Domain Controllers OU.
# Their settings (password policy, user rights) are none of procaudit's business: the lab gives them none.
DEFAULT_GPOS: Final[tuple[tuple[str, str, str | None], ...]] = (
    ("31b2f340-016d-11d2-945f-00c04fb984f9", "Default Domain Policy", None),
    ("6ac1786c-016f-11d2-945f-00c04fb984f9", "Default Domain Controllers Policy", "Domain Controllers"),
)


def directory_of(world: LabWorld) -> Directory:
    """The world's directory, created on first use from its hosts (a computer account per host)."""
    with world.lock:
        if world.directory is None:
            directory = Directory()
            directory.ous = {ou_dn(name) for name in ("Servers", "Workstations", "Domain Controllers")}
            for name, host in world.hosts.items():
                ou = ou_dn(_ROLE_OU.get(host.role, "Servers"))
                directory.computers[_sam(host).lower()] = (f"CN={host.os.computer_name},{ou}", name)
                directory.tickets[name] = frozenset()
            created = datetime.now(UTC) - timedelta(days=900)
            for gpo_id, gpo_name, linked_ou in DEFAULT_GPOS:
                directory.gpos[gpo_id] = _new_gpo(gpo_id, gpo_name, GpoPayload(), {}, created)
                directory.links.append(GpoLink(gpo_id, ou_dn(linked_ou) if linked_ou else directory.dn))
            world.directory = directory
        assert isinstance(world.directory, Directory)
        return world.directory
