"""What the OS can log: command line in 4688, the 4688 event version, and the host's role.

Decisions use only locale-independent fields: ``Version`` (``6.1.7601``, ``10.0.17763``), ``BuildNumber``,
``ProductType`` (1 workstation, 2 domain controller, 3 server) and installed hotfix ids. Product names and
``OSArchitecture`` are localized (``64비트`` in the ko-KR capture) and are not read.

Facts and how sure they are:

- Command line in 4688: Windows 8.1 / Server 2012 R2 (6.3) and later (ADMX ``IncludeCmdLine`` supportedOn
  ``SUPPORTED_Windows_6_3``); Windows 7 / Server 2008 R2 (6.1) only with KB3004375 (reference/gpo_audit.md
  6.1; a real KB3004375 row is in the Get-HotFix capture). KB3004375 is offered for SP1 (build 7601); that
  build 7600 cannot get it is our assumption (updates of that era require SP1).
- Windows 8 / Server 2012 (6.2): the ADMX support statement excludes it, and whether KB3004375 also applies
  to 6.2 is not established from our sources, so the answer is UNKNOWN rather than a guess.
- Event 4688 version: 0 on 6.0/6.1 without the update (no CommandLine field), 1 on 6.1 with KB3004375 and on
  6.3 (ends at CommandLine, field 9), 2 on 10.0 and later (adds TargetUserSid ... ParentProcessName,
  MandatoryLabel). 6.2 is left open for the same reason as above. Before 6.0 process creation was event 592.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError

KB_CMDLINE: Final = "KB3004375"


class Role(StrEnum):
    WORKSTATION = "workstation"
    DOMAIN_CONTROLLER = "domain_controller"
    MEMBER_SERVER = "member_server"
    """ProductType 3: any server that is not a DC, joined or not."""
    UNKNOWN = "unknown"


class CmdlineSupport(StrEnum):
    SUPPORTED = "supported"
    NEEDS_UPDATE = "needs_update"
    """Windows 7 / 2008 R2 SP1 without KB3004375: installable."""
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"


_ROLES: Final = {1: Role.WORKSTATION, 2: Role.DOMAIN_CONTROLLER, 3: Role.MEMBER_SERVER}


class OsFacts(BaseModel):
    """The OS facts the readiness checks need, with the reason for each decision."""

    model_config = ConfigDict(frozen=True)

    version: str
    major: int
    minor: int
    build: int | None
    product_type: int | None
    role: Role
    hotfix_ids: tuple[str, ...] | None
    """Installed hotfixes as ``KB1234567``; ``None`` when not collected (not the same as none installed)."""
    cmdline_support: CmdlineSupport
    cmdline_reason: str
    event_4688_version: int | None
    event_4688_reason: str

    @property
    def has_parent_process_name(self) -> bool | None:
        """Whether 4688 carries ParentProcessName (fields 10-15 exist only in version 2)."""
        return None if self.event_4688_version is None else self.event_4688_version >= 2


def os_facts(
    version: str,
    *,
    build_number: str | int | None = None,
    product_type: str | int | None = None,
    hotfix_ids: Iterable[str] | None = None,
) -> OsFacts:
    """Decide command-line support, 4688 version and role from locale-independent OS fields.

    Raises:
        ParseError: ``version`` is not ``major.minor[.build[.revision]]``, the build in it disagrees with
            ``build_number``, or ``product_type`` is not 1, 2 or 3.
    """
    source = "OS version fields"
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)?\s*", version)
    if not match:
        raise ParseError(f"Version {version!r} is not major.minor[.build]", source=source)
    major, minor = int(match.group(1)), int(match.group(2))
    build = int(match.group(3)) if match.group(3) else None
    if build_number is not None and str(build_number).strip():
        text = str(build_number).strip()
        if not text.isdigit():
            raise ParseError(f"BuildNumber {build_number!r} is not a number", source=source)
        if build is not None and build != int(text):
            raise ParseError(f"Version {version!r} and BuildNumber {text} disagree", source=source)
        build = int(text)

    role = Role.UNKNOWN
    ptype: int | None = None
    if product_type is not None and str(product_type).strip():
        text = str(product_type).strip()
        if not text.isdigit() or int(text) not in _ROLES:
            raise ParseError(f"ProductType {product_type!r} is not 1, 2 or 3", source=source)
        ptype = int(text)
        role = _ROLES[ptype]

    hotfixes = None if hotfix_ids is None else tuple(normalize_kb(h) for h in hotfix_ids if h.strip())
    support, support_reason = _cmdline_support(major, minor, build, hotfixes)
    event_version, event_reason = _event_version(major, minor, build, hotfixes)
    return OsFacts(
        version=version.strip(),
        major=major,
        minor=minor,
        build=build,
        product_type=ptype,
        role=role,
        hotfix_ids=hotfixes,
        cmdline_support=support,
        cmdline_reason=support_reason,
        event_4688_version=event_version,
        event_4688_reason=event_reason,
    )


def normalize_kb(hotfix_id: str) -> str:
    """``kb3004375`` / ``3004375`` -> ``KB3004375``; anything else is returned stripped and upper-cased."""
    text = hotfix_id.strip().upper()
    return f"KB{text}" if text.isdigit() else text


def _has(hotfixes: tuple[str, ...], kb: str) -> bool:
    return kb in hotfixes


def _cmdline_support(
    major: int, minor: int, build: int | None, hotfixes: tuple[str, ...] | None
) -> tuple[CmdlineSupport, str]:
    if (major, minor) >= (6, 3):
        return CmdlineSupport.SUPPORTED, "Windows 8.1 / Server 2012 R2 (6.3) and later log the command line"
    if (major, minor) == (6, 2):
        detail = f"; {KB_CMDLINE} is installed" if hotfixes is not None and _has(hotfixes, KB_CMDLINE) else ""
        return (
            CmdlineSupport.UNKNOWN,
            f"Windows 8 / Server 2012 (6.2): the policy is documented for 6.3 and later, and {KB_CMDLINE} "
            f"is only established for 6.1{detail}; verify on the host",
        )
    if (major, minor) == (6, 1):
        if build is not None and build < 7601:
            return CmdlineSupport.UNSUPPORTED, f"Windows 7 / 2008 R2 without SP1 cannot install {KB_CMDLINE}"
        if hotfixes is None:
            return CmdlineSupport.UNKNOWN, f"Windows 7 / 2008 R2: needs {KB_CMDLINE}; the hotfix list was not read"
        if _has(hotfixes, KB_CMDLINE):
            return CmdlineSupport.SUPPORTED, f"Windows 7 / 2008 R2 with {KB_CMDLINE}"
        return CmdlineSupport.NEEDS_UPDATE, f"Windows 7 / 2008 R2 without {KB_CMDLINE}: install it first"
    return CmdlineSupport.UNSUPPORTED, f"Windows {major}.{minor} predates command-line auditing"


def _event_version(
    major: int, minor: int, build: int | None, hotfixes: tuple[str, ...] | None
) -> tuple[int | None, str]:
    if major >= 10:
        return 2, "Windows 10 / Server 2016 and later write 4688 version 2 (with ParentProcessName)"
    if (major, minor) == (6, 3):
        return 1, "Windows 8.1 / Server 2012 R2 write 4688 version 1 (ends at CommandLine)"
    if (major, minor) == (6, 2):
        return None, "Windows 8 / Server 2012 (6.2): 4688 version not established from our sources"
    if (major, minor) == (6, 1):
        if build is not None and build < 7601:
            return 0, "Windows 7 / 2008 R2 without SP1 write 4688 version 0 (no CommandLine)"
        if hotfixes is None:
            return None, f"Windows 7 / 2008 R2: version 1 with {KB_CMDLINE}, 0 without; hotfix list not read"
        if _has(hotfixes, KB_CMDLINE):
            return 1, f"Windows 7 / 2008 R2 with {KB_CMDLINE} write 4688 version 1"
        return 0, f"Windows 7 / 2008 R2 without {KB_CMDLINE} write 4688 version 0 (no CommandLine)"
    if (major, minor) == (6, 0):
        return 0, "Windows Vista / Server 2008 write 4688 version 0 (no CommandLine)"
    return None, "Windows before Vista logs process creation as event 592, not 4688"
