"""SDDL security descriptors, and who may read an event log channel.

``wevtutil gl Security`` prints the channel's access as SDDL in ``channelAccess``, e.g. the Windows default
``O:BAG:SYD:(A;;0xf0005;;;SY)(A;;0x5;;;BA)(A;;0x1;;;S-1-5-32-573)``. An ACE is
``(type;flags;rights;object guid;inherit object guid;trustee)``: type ``A`` allow / ``D`` deny (others kept as
written), rights as a number (``0x1``) or as letter pairs (``GR``, ``RC`` ...), trustee a SID or a two-letter
alias (``SY``, ``BA``, ``NS`` ...).

Event log channel rights (the low bits of the mask): 0x1 read, 0x2 write, 0x4 clear. Anyone who may read the
Security log reads every 4688 command line, so ``readers`` and ``extra_readers`` report exactly that.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError

# Default Security channel ACL on workstations, member servers and DCs: reference/gpo_audit.md §6.2, and every
# `wevtutil gl Security` capture in shared/data/windows/03_wevtutil_security_channel that shows the whole line.
DEFAULT_SECURITY_CHANNEL_SDDL: Final = "O:BAG:SYD:(A;;0xf0005;;;SY)(A;;0x5;;;BA)(A;;0x1;;;S-1-5-32-573)"

CHANNEL_READ: Final = 0x1
CHANNEL_WRITE: Final = 0x2
CHANNEL_CLEAR: Final = 0x4
GENERIC_ALL: Final = 0x10000000
GENERIC_READ: Final = 0x80000000

# Access right letter pairs (MS-DTYP 2.5.1.1 "ace-rights").
RIGHTS: Final[dict[str, int]] = {
    "GA": 0x10000000,
    "GR": 0x80000000,
    "GW": 0x40000000,
    "GX": 0x20000000,
    "RC": 0x00020000,
    "SD": 0x00010000,
    "WD": 0x00040000,
    "WO": 0x00080000,
    "RP": 0x00000010,
    "WP": 0x00000020,
    "CC": 0x00000001,
    "DC": 0x00000002,
    "LC": 0x00000004,
    "SW": 0x00000008,
    "LO": 0x00000080,
    "DT": 0x00000040,
    "CR": 0x00000100,
    "FA": 0x001F01FF,
    "FR": 0x00120089,
    "FW": 0x00120116,
    "FX": 0x001200A0,
    "KA": 0x000F003F,
    "KR": 0x00020019,
    "KW": 0x00020006,
    "KX": 0x00020019,
    "NR": 0x00000001,
    "NW": 0x00000002,
    "NX": 0x00000004,
}

# SID string aliases (MS-DTYP 2.5.1.1 "sid-token") that name a fixed SID, with their English account names.
ALIASES: Final[dict[str, tuple[str, str]]] = {
    "AN": ("S-1-5-7", r"NT AUTHORITY\ANONYMOUS LOGON"),
    "AU": ("S-1-5-11", r"NT AUTHORITY\Authenticated Users"),
    "BA": ("S-1-5-32-544", r"BUILTIN\Administrators"),
    "BG": ("S-1-5-32-546", r"BUILTIN\Guests"),
    "BO": ("S-1-5-32-551", r"BUILTIN\Backup Operators"),
    "BU": ("S-1-5-32-545", r"BUILTIN\Users"),
    "CG": ("S-1-3-1", "CREATOR GROUP"),
    "CO": ("S-1-3-0", "CREATOR OWNER"),
    "ED": ("S-1-5-9", r"NT AUTHORITY\ENTERPRISE DOMAIN CONTROLLERS"),
    "ER": ("S-1-5-32-573", r"BUILTIN\Event Log Readers"),
    "IS": ("S-1-5-32-568", r"BUILTIN\IIS_IUSRS"),
    "IU": ("S-1-5-4", r"NT AUTHORITY\INTERACTIVE"),
    "LS": ("S-1-5-19", r"NT AUTHORITY\LOCAL SERVICE"),
    "LU": ("S-1-5-32-559", r"BUILTIN\Performance Log Users"),
    "MU": ("S-1-5-32-558", r"BUILTIN\Performance Monitor Users"),
    "NO": ("S-1-5-32-556", r"BUILTIN\Network Configuration Operators"),
    "NS": ("S-1-5-20", r"NT AUTHORITY\NETWORK SERVICE"),
    "NU": ("S-1-5-2", r"NT AUTHORITY\NETWORK"),
    "OW": ("S-1-3-4", "OWNER RIGHTS"),
    "PO": ("S-1-5-32-550", r"BUILTIN\Print Operators"),
    "PS": ("S-1-5-10", r"NT AUTHORITY\SELF"),
    "PU": ("S-1-5-32-547", r"BUILTIN\Power Users"),
    "RC": ("S-1-5-12", r"NT AUTHORITY\RESTRICTED"),
    "RD": ("S-1-5-32-555", r"BUILTIN\Remote Desktop Users"),
    "RE": ("S-1-5-32-552", r"BUILTIN\Replicator"),
    "RM": ("S-1-5-32-580", r"BUILTIN\Remote Management Users"),
    "RU": ("S-1-5-32-554", r"BUILTIN\Pre-Windows 2000 Compatible Access"),
    "SO": ("S-1-5-32-549", r"BUILTIN\Server Operators"),
    "SU": ("S-1-5-6", r"NT AUTHORITY\SERVICE"),
    "SY": ("S-1-5-18", r"NT AUTHORITY\SYSTEM"),
    "WD": ("S-1-1-0", "Everyone"),
    "WR": ("S-1-5-33", r"NT AUTHORITY\WRITE RESTRICTED"),
    "AC": ("S-1-15-2-1", r"APPLICATION PACKAGE AUTHORITY\ALL APPLICATION PACKAGES"),
}

# Aliases relative to the domain (or machine) SID: the SID depends on the host, only the RID is fixed.
DOMAIN_ALIASES: Final[dict[str, tuple[int, str]]] = {
    "DA": (512, "Domain Admins"),
    "DU": (513, "Domain Users"),
    "DG": (514, "Domain Guests"),
    "DC": (515, "Domain Computers"),
    "DD": (516, "Domain Controllers"),
    "CA": (517, "Cert Publishers"),
    "SA": (518, "Schema Admins"),
    "EA": (519, "Enterprise Admins"),
    "PA": (520, "Group Policy Creator Owners"),
    "RO": (498, "Enterprise Read-only Domain Controllers"),
    "LA": (500, "Administrator"),
    "LG": (501, "Guest"),
}

# English names of well-known SIDs that have no alias but show up in channel ACLs (the System channel's
# S-1-5-3 in the ja-JP capture) or in WEF set-ups.
_WELL_KNOWN_NAMES: Final[dict[str, str]] = {
    "S-1-5-3": r"NT AUTHORITY\BATCH",
    "S-1-5-1": r"NT AUTHORITY\DIALUP",
    "S-1-5-13": r"NT AUTHORITY\TERMINAL SERVER USER",
    "S-1-5-14": r"NT AUTHORITY\REMOTE INTERACTIVE LOGON",
    "S-1-5-15": r"NT AUTHORITY\This Organization",
    "S-1-5-32-562": r"BUILTIN\Distributed COM Users",
    "S-1-5-32-569": r"BUILTIN\Cryptographic Operators",
    "S-1-5-32-578": r"BUILTIN\Hyper-V Administrators",
    "S-1-5-32-579": r"BUILTIN\Access Control Assistance Operators",
    "S-1-5-80-0": r"NT SERVICE\ALL SERVICES",
}
_SID_NAMES: Final[dict[str, str]] = {sid: name for sid, name in ALIASES.values()} | _WELL_KNOWN_NAMES

_SID_RE = re.compile(r"^S-1-\d+(-\d+)*$", re.IGNORECASE)
_SOURCE = "SDDL"


class Principal(BaseModel):
    """A trustee. ``sid`` is ``None`` for a domain-relative alias (``DA``), whose SID depends on the domain."""

    model_config = ConfigDict(frozen=True)

    sid: str | None
    alias: str | None = None
    name: str | None = None
    """English account name when the SID is well known; Windows shows the localized one."""

    @property
    def key(self) -> str:
        """What identifies the principal: the SID, or ``alias:DA`` for a domain-relative alias."""
        return self.sid if self.sid is not None else f"alias:{self.alias}"

    def __str__(self) -> str:
        ident = self.sid or self.alias or "?"
        return f"{self.name} ({ident})" if self.name else ident


class Ace(BaseModel):
    """One ACE. ``rights`` is the mask with letter pairs expanded; ``rights_text`` is as written."""

    model_config = ConfigDict(frozen=True)

    ace_type: str
    flags: str
    rights: int
    rights_text: str
    object_guid: str
    inherit_object_guid: str
    trustee: Principal
    text: str

    @property
    def allows(self) -> bool:
        return self.ace_type in ("A", "OA", "XA", "ZA")

    @property
    def denies(self) -> bool:
        return self.ace_type in ("D", "OD", "XD")

    @property
    def inherit_only(self) -> bool:
        """``IO``: the ACE only passes to children and does not apply to the object itself."""
        return "IO" in _pairs(self.flags)

    def grants_read(self) -> bool:
        """Whether the mask includes channel read (0x1), directly or through GENERIC_READ / GENERIC_ALL.

        Counting the generic bits as read assumes the event log service maps them that way; the default
        channel ACLs in the captures only use explicit bits.
        """
        return bool(self.rights & (CHANNEL_READ | GENERIC_READ | GENERIC_ALL))


class SecurityDescriptor(BaseModel):
    """A parsed SDDL string. ``dacl`` is ``None`` when the string has no ``D:`` part (not an empty DACL)."""

    model_config = ConfigDict(frozen=True)

    owner: Principal | None
    group: Principal | None
    dacl_flags: str = ""
    dacl: tuple[Ace, ...] | None = None
    sacl_flags: str = ""
    sacl: tuple[Ace, ...] | None = None


def principal(token: str) -> Principal:
    """A trustee from an alias (``NS``) or SID string (``S-1-5-20``); the two forms give the same SID.

    Raises:
        ParseError: the token is neither.
    """
    text = token.strip()
    upper = text.upper()
    if upper in ALIASES:
        sid, name = ALIASES[upper]
        return Principal(sid=sid, alias=upper, name=name)
    if upper in DOMAIN_ALIASES:
        return Principal(sid=None, alias=upper, name=DOMAIN_ALIASES[upper][1])
    if _SID_RE.match(text):
        sid = "S" + text[1:]
        alias = next((a for a, (s, _) in ALIASES.items() if s == sid), None)
        return Principal(sid=sid, alias=alias, name=_SID_NAMES.get(sid))
    raise ParseError(f"{token!r} is neither a SID nor a known SDDL alias", source=_SOURCE)


def parse_sddl(text: str) -> SecurityDescriptor:
    """Parse an SDDL string (``O:`` owner, ``G:`` group, ``D:`` DACL, ``S:`` SACL, in any order).

    Raises:
        ParseError: unbalanced parentheses, an ACE without six fields, an unknown right or trustee; the
            message names the character offset.
    """
    sddl = text.strip()
    if not sddl:
        raise ParseError("empty SDDL string", source=_SOURCE)
    parts: dict[str, str] = {}
    index = 0
    while index < len(sddl):
        if sddl[index] not in "OGDS" or sddl[index + 1 : index + 2] != ":":
            raise ParseError(f"expected O:, G:, D: or S: at offset {index} of {sddl!r}", source=_SOURCE)
        key = sddl[index]
        end = _component_end(sddl, index + 2)
        if key in parts:
            raise ParseError(f"{key}: appears twice (offset {index})", source=_SOURCE)
        parts[key] = sddl[index + 2 : end]
        index = end

    owner = principal(parts["O"]) if "O" in parts else None
    group = principal(parts["G"]) if "G" in parts else None
    dacl_flags, dacl = _parse_acl(parts["D"]) if "D" in parts else ("", None)
    sacl_flags, sacl = _parse_acl(parts["S"]) if "S" in parts else ("", None)
    return SecurityDescriptor(
        owner=owner, group=group, dacl_flags=dacl_flags, dacl=dacl, sacl_flags=sacl_flags, sacl=sacl
    )


def _component_end(sddl: str, start: int) -> int:
    """End of an O:/G:/D:/S: component: the next ``X:`` that is not inside parentheses."""
    depth = 0
    index = start
    while index < len(sddl):
        char = sddl[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ParseError(f"unbalanced ')' at offset {index}", source=_SOURCE)
        elif depth == 0 and char in "OGDS" and index + 1 < len(sddl) and sddl[index + 1] == ":" and index > start:
            return index
        index += 1
    if depth:
        raise ParseError(f"unclosed '(' in {sddl[start:]!r}", source=_SOURCE)
    return index


def _parse_acl(text: str) -> tuple[str, tuple[Ace, ...]]:
    first = text.find("(")
    flags = text if first < 0 else text[:first]
    aces: list[Ace] = []
    index = first if first >= 0 else len(text)
    while index < len(text):
        if text[index] != "(":
            raise ParseError(f"unexpected {text[index : index + 10]!r} between ACEs", source=_SOURCE)
        depth = 0
        end = index
        while end < len(text):
            if text[end] == "(":
                depth += 1
            elif text[end] == ")":
                depth -= 1
                if depth == 0:
                    break
            end += 1
        if depth:
            raise ParseError(f"unclosed '(' in {text!r}", source=_SOURCE)
        aces.append(_parse_ace(text[index + 1 : end]))
        index = end + 1
    return flags, tuple(aces)


def _parse_ace(body: str) -> Ace:
    fields = body.split(";", 6)
    # Conditional and resource-attribute ACEs have a seventh field; the first six are the same.
    if len(fields) < 6:
        raise ParseError(f"ACE ({body}) has {len(fields)} fields, expected 6", source=_SOURCE)
    ace_type, flags, rights_text, object_guid, inherit_guid, trustee = (f.strip() for f in fields[:6])
    return Ace(
        ace_type=ace_type.upper(),
        flags=flags.upper(),
        rights=_rights(rights_text),
        rights_text=rights_text,
        object_guid=object_guid,
        inherit_object_guid=inherit_guid,
        trustee=principal(trustee),
        text=f"({body})",
    )


def _rights(text: str) -> int:
    if re.fullmatch(r"0[xX][0-9A-Fa-f]+", text):
        return int(text, 16)
    if text.isdigit():
        return int(text)
    mask = 0
    for pair in _pairs(text):
        if pair.upper() not in RIGHTS:
            raise ParseError(f"unknown access right {pair!r} in {text!r}", source=_SOURCE)
        mask |= RIGHTS[pair.upper()]
    return mask


def _pairs(text: str) -> list[str]:
    if len(text) % 2:
        raise ParseError(f"{text!r} is not a sequence of two-letter codes", source=_SOURCE)
    return [text[i : i + 2] for i in range(0, len(text), 2)]


def readers(sddl: str | SecurityDescriptor) -> list[Principal]:
    """Who may read the channel: trustees of allow ACEs with the read bit, in ACL order, each once.

    A trustee with a deny ACE that includes read is left out. Group membership is not expanded (the
    members of Event Log Readers are a separate fact), and inherit-only ACEs do not apply to the channel.
    A descriptor without a DACL grants everyone access; that is reported as Everyone.
    """
    descriptor = parse_sddl(sddl) if isinstance(sddl, str) else sddl
    if descriptor.dacl is None:
        return [principal("WD")]
    denied = {a.trustee.key for a in descriptor.dacl if a.denies and not a.inherit_only and a.grants_read()}
    found: dict[str, Principal] = {}
    for ace in descriptor.dacl:
        if ace.allows and not ace.inherit_only and ace.grants_read() and ace.trustee.key not in denied:
            found.setdefault(ace.trustee.key, ace.trustee)
    return list(found.values())


def extra_readers(sddl: str | SecurityDescriptor, baseline: str = DEFAULT_SECURITY_CHANNEL_SDDL) -> list[Principal]:
    """Readers of ``sddl`` that the baseline (the Windows default Security channel ACL) does not have.

    ``NS`` and ``S-1-5-20`` are the same principal (Network Service), as are any alias and its SID.
    """
    known = {p.key for p in readers(baseline)}
    return [p for p in readers(sddl) if p.key not in known]
