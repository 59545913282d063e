"""What the procaudit GPO sets, and the user's choices about it (name, domain, failure auditing, log size).

Facts and sources (details in ``../shared/reference/gpo_audit.md``):

* Advanced Audit Policy "Audit Process Creation", subcategory ``{0CCE922B-69AE-11D9-BED3-505054503030}``;
  audit.csv Setting Value 1 = Success, 3 = Success and Failure ([MS-GPAC] 2.2.1.3.1).
* "Audit: Force audit policy subcategory settings ... to override audit policy category settings":
  ``MACHINE\\System\\CurrentControlSet\\Control\\Lsa\\SCENoApplyLegacyAuditPolicy=4,1`` in GptTmpl.inf
  ``[Registry Values]``; with it the security extension ignores ``[Event Audit]`` ([MS-GPSB] 3.2.5.6).
* "Include command line in process creation events": registry.pol
  ``Software\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\Audit``
  ``ProcessCreationIncludeCmdLine_Enabled`` REG_DWORD 1 (AuditSettings.admx, Windows 8.1 / 2012 R2 and later).
* "Event Log Service/Security: Specify the maximum log file size (KB)": registry.pol
  ``Software\\Policies\\Microsoft\\Windows\\EventLog\\Security`` ``MaxSize`` REG_DWORD, in KB.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from procaudit.facts import CMDLINE_VALUE
from procaudit.gpo.errors import GpoSettingsError

# -- the settings ---------------------------------------------------------------------------------------

# GPMC writes the audit.csv name with the "Audit " prefix (the name is for people; the CSE keys on the GUID).
PROCESS_CREATION_SUBCATEGORY_NAME = "Audit Process Creation"

CMDLINE_POLICY_KEY = r"Software\Microsoft\Windows\CurrentVersion\Policies\System\Audit"
CMDLINE_POLICY_VALUE = CMDLINE_VALUE

SECURITY_LOG_POLICY_KEY = r"Software\Policies\Microsoft\Windows\EventLog\Security"
SECURITY_LOG_MAXSIZE_VALUE = "MaxSize"

FORCE_SUBCATEGORY_REGISTRY_PATH = r"MACHINE\System\CurrentControlSet\Control\Lsa\SCENoApplyLegacyAuditPolicy"

# The range of MaxSize for the Security log, in KB, from the ADMX explain text of "Specify the maximum log
# file size (KB)" under Event Log Service/Security as GPMC reports it for the Microsoft Windows 10 1909
# security baseline: "between 20 megabytes (20480 kilobytes) and 2 terabytes (2147483647 kilobytes), in
# kilobyte increments" (../shared/data/windows/02_gpresult_xml/gporeport_msft_baseline_win10_1909_*.xml;
# a test re-reads it). Older ADMX texts gave 1 MB as the minimum; 20 MB is also the Windows default size.
SECURITY_LOG_MIN_KB = 20480
SECURITY_LOG_MAX_KB = 2147483647

DEFAULT_DISPLAY_NAME = "procaudit - Process Creation Auditing"
# A name under the reserved .invalid TLD (RFC 2606 / RFC 6761): it can never be a real domain, so nobody
# mistakes it for theirs. The backup's domain only records where a backup came from; Import-GPO writes the
# settings into a GPO of the domain it runs against (Microsoft's baselines ship backups from their own
# build domains and are imported everywhere). UNVERIFIED on a DC that a .invalid name is accepted.
PLACEHOLDER_DOMAIN = "procaudit.invalid"

_MAX_DISPLAY_NAME = 255  # our own cap, to keep the name sane in GPMC and file listings
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class GpoSettings(BaseModel):
    """The inputs of the GPO: everything that decides the content of the backup (apart from ids and time).

    Build it from command-line text with :meth:`from_user`, which turns validation failures into
    :class:`~procaudit.gpo.errors.GpoSettingsError`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    display_name: str = DEFAULT_DISPLAY_NAME
    domain: str = PLACEHOLDER_DOMAIN
    include_failure: bool = False
    security_log_max_kb: int | None = None

    @field_validator("display_name")
    @classmethod
    def _check_display_name(cls, name: str) -> str:
        if not name or name != name.strip():
            raise ValueError("the GPO name must not be empty or start/end with whitespace")
        if len(name) > _MAX_DISPLAY_NAME:
            raise ValueError(f"the GPO name is {len(name)} characters; keep it to {_MAX_DISPLAY_NAME}")
        bad = sorted({f"U+{ord(ch):04X}" for ch in name if _is_forbidden_char(ch)})
        if bad:
            raise ValueError(f"the GPO name contains control or non-character code points: {', '.join(bad)}")
        return name

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, domain: str) -> str:
        name = domain[:-1] if domain.endswith(".") else domain
        if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
            raise ValueError(
                f"{domain!r} is not a DNS domain name (labels of letters, digits and hyphens, separated by dots)"
            )
        return name

    @field_validator("security_log_max_kb")
    @classmethod
    def _check_log_size(cls, size_kb: int | None) -> int | None:
        if size_kb is not None and not SECURITY_LOG_MIN_KB <= size_kb <= SECURITY_LOG_MAX_KB:
            raise ValueError(
                f"Security log maximum size {size_kb} KB is outside the range Windows accepts for this policy: "
                f"{SECURITY_LOG_MIN_KB} KB (20 MB) to {SECURITY_LOG_MAX_KB} KB (2 TB)"
            )
        return size_kb

    @property
    def audit_setting_value(self) -> int:
        """audit.csv Setting Value: 1 Success, 3 Success and Failure ([MS-GPAC] 2.2.1.3.1)."""
        return 3 if self.include_failure else 1

    @property
    def audit_inclusion_setting(self) -> str:
        """audit.csv Inclusion Setting text (for people only; the CSE uses the Setting Value)."""
        return "Success and Failure" if self.include_failure else "Success"

    @classmethod
    def from_user(
        cls,
        *,
        display_name: str | None = None,
        domain: str | None = None,
        include_failure: bool = False,
        log_size: str | None = None,
    ) -> Self:
        """Build settings from command-line text.

        Args:
            display_name: GPO display name; ``None`` for :data:`DEFAULT_DISPLAY_NAME`.
            domain: DNS domain recorded in the backup; ``None`` for :data:`PLACEHOLDER_DOMAIN`.
            include_failure: audit failed process creation too (Setting Value 3 instead of 1).
            log_size: Security log maximum size with a unit, e.g. ``"1GB"`` or ``"196608KB"``; ``None`` to
                leave the log size alone.

        Raises:
            GpoSettingsError: a value is unusable; the message says which and why.
        """
        values: dict[str, object] = {"include_failure": include_failure}
        if display_name is not None:
            values["display_name"] = display_name
        if domain is not None:
            values["domain"] = domain
        if log_size is not None:
            values["security_log_max_kb"] = parse_log_size(log_size)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise GpoSettingsError(f"{_FIELD_LABELS.get(field, field)}: {message}") from None


_FIELD_LABELS = {"display_name": "--name", "domain": "--domain", "security_log_max_kb": "--log-size"}

_UNITS = {
    "KB": 1,
    "KIB": 1,
    "MB": 1024,
    "MIB": 1024,
    "GB": 1024**2,
    "GIB": 1024**2,
    "TB": 1024**3,
    "TIB": 1024**3,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$")


def parse_log_size(text: str) -> int:
    """Parse a size such as ``"1GB"``, ``"192 MB"`` or ``"196608KB"`` into kilobytes (1 KB = 1024 bytes).

    Units are binary, as in the Windows policy ("Maximum Log Size (KB)": 196608 KB = 192 MB). A unit is
    required: a bare number is ambiguous between bytes (wevtutil) and kilobytes (the policy).

    Raises:
        GpoSettingsError: no unit, an unknown unit, or a size that is not a whole number of kilobytes.
    """
    match = _SIZE.match(text)
    if not match:
        raise GpoSettingsError(f"--log-size: {text!r} is not a size; write e.g. 196608KB, 192MB or 1GB")
    unit = match["unit"].upper()
    if not unit:
        raise GpoSettingsError(
            f"--log-size: {text!r} has no unit; write e.g. {match['number']}KB (the policy counts kilobytes)"
        )
    if unit not in _UNITS:
        raise GpoSettingsError(f"--log-size: unknown unit {match['unit']!r}; use KB, MB, GB or TB")
    try:
        kilobytes = Decimal(match["number"]) * _UNITS[unit]
    except InvalidOperation:  # pragma: no cover - the regex admits only decimal numbers
        raise GpoSettingsError(f"--log-size: {text!r} is not a number") from None
    if kilobytes != kilobytes.to_integral_value():
        raise GpoSettingsError(f"--log-size: {text!r} is not a whole number of kilobytes")
    return int(kilobytes)


def _is_forbidden_char(ch: str) -> bool:
    code = ord(ch)
    # C0/C1 controls and DEL cannot sensibly appear in a name (XML 1.0 cannot even carry most C0 ones);
    # surrogates and U+FFFE/U+FFFF are not characters.
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF)
