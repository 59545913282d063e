"""Where credentials come from: PROCAUDIT_USER / PROCAUDIT_PASSWORD, or an interactive prompt. Never a file."""

from __future__ import annotations

import getpass
import os
import sys

from procaudit.errors import CredentialError
from procaudit.transport.base import Credentials

USER_ENV = "PROCAUDIT_USER"
PASSWORD_ENV = "PROCAUDIT_PASSWORD"


def resolve_credentials(username: str | None, *, needs_password: bool = True) -> Credentials | None:
    """Credentials for this run. ``username`` (from --user or the inventory) wins over PROCAUDIT_USER.

    Returns ``None`` when no password is needed (Kerberos ticket cache, certificate auth) and none is given.
    """
    user = username or os.environ.get(USER_ENV)
    password = os.environ.get(PASSWORD_ENV)
    if not needs_password and not password:
        return None
    if not user:
        if not sys.stdin.isatty():
            raise CredentialError(f"no user name: set {USER_ENV} (e.g. CORP\\svc-procaudit) or pass --user")
        user = _ask("WinRM user (DOMAIN\\user): ")
    if password is None:
        if not sys.stdin.isatty():
            raise CredentialError(f"no password for {user}: set {PASSWORD_ENV} or run from a terminal to be asked")
        # getpass asks on the terminal itself (stderr when there is none): never on stdout, which a report may use.
        password = getpass.getpass(f"Password for {user}: ", stream=sys.stderr)
    if not user or not password:
        raise CredentialError("empty user name or password")
    return Credentials(user, password)


def _ask(prompt: str) -> str:
    """Read one line from stdin, with the prompt on stderr (stdout carries reports: ``--format json > file``)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline().strip()
