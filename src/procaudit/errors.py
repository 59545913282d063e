"""One exception tree for everything procaudit reports to a person.

Every error carries a message an administrator can act on. The CLI turns a ``ProcauditError`` into a
one-line message and an exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ProcauditError(Exception):
    """Root of every error procaudit raises on purpose."""


class UserInputError(ProcauditError):
    """Bad input from the user: a malformed file, an unknown option value, a missing path."""


class InventoryError(UserInputError):
    """The inventory file cannot be used. The message names the file, the line and what is wrong."""


class CredentialError(UserInputError):
    """No usable credentials were supplied."""


class ParseError(ProcauditError):
    """Text we were given (a captured output, a file, a probe's raw material) is not in the format its parser reads.

    ``source`` names what was parsed (a file name or a description such as ``"auditpol /backup CSV"``) and
    ``line`` is 1-based where the parser can tell.
    """

    def __init__(self, message: str, *, source: str, line: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.line = line

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}" if self.line is not None else self.source
        return f"{where}: {super().__str__()}"


class EventFileError(UserInputError):
    """An event file (evtx, JSON, XML) cannot be read at all. The message names the file."""


class RuleFileError(UserInputError):
    """A detection rule file is invalid. The message names the file, the rule id, the field and the YAML line."""


class ContentError(ProcauditError):
    """A shipped content file (script, check, template, rule) is missing or malformed."""


class ManagementPackError(ContentError):
    """A generated management pack failed validation (XSD or semantic checks): a bug in the template or compiler."""


class TransportError(ProcauditError):
    """Base of per-host failures. ``kind`` is a stable machine-readable classification."""

    kind = "error"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class UnreachableError(TransportError):
    """DNS failure, connection refused or connect timeout: we never spoke WinRM with the host."""

    kind = "unreachable"


class AuthError(TransportError):
    """The host answered but rejected the credentials or the authentication protocol."""

    kind = "auth"


class TlsError(TransportError):
    """The TLS handshake failed: untrusted CA, name mismatch, expired certificate, HTTP against HTTPS."""

    kind = "tls"


class ConnectionLostError(TransportError):
    """The connection was cut in the middle of an exchange (network drop, WinRM service restart)."""

    kind = "dropped"


class DeadlineError(TransportError):
    """The script (or the connection) did not finish within its deadline; the pipeline was stopped."""

    kind = "timeout"


class RemoteScriptError(TransportError):
    """The remote script reported errors (terminating, or non-terminating on the error stream)."""

    kind = "script"


class ContractError(TransportError):
    """The remote script's output broke its contract (not exactly one JSON document of the expected shape)."""

    kind = "contract"


class ProtocolError(TransportError):
    """A WS-Management fault or HTTP error that is none of the above."""

    kind = "protocol"


class CancelledError(TransportError):
    """The run was interrupted (Ctrl-C) before this host was reached, or while it was in flight."""

    kind = "cancelled"

    @classmethod
    def in_flight(cls, host: str) -> CancelledError:
        return cls(f"cancelled: the run was interrupted while {host} was in flight")


class InternalError(TransportError):
    """A bug in procaudit while handling this host; the other hosts are unaffected."""

    kind = "internal"
