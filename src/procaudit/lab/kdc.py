"""A real MIT Kerberos KDC for the lab, on loopback, from Debian's ``krb5-kdc`` / ``krb5-admin-server`` packages.

The KDC runs as a child process with its own configuration (``KRB5_CONFIG`` for clients, ``KRB5_KDC_PROFILE``
for the KDC), a throw-away database created with ``kdb5_util`` and principals added with ``kadmin.local``. Every
file lives in one private directory (0700) that ``stop()`` removes. Passwords go to ``kadmin.local`` on its
standard input, never on a command line where ``ps`` would show them.

GSSAPI reads ``KRB5_CONFIG`` (where the realm's KDC is) and ``KRB5_KTNAME`` (the acceptor's keytab) from the
process environment, so one KDC serves every lab of a process: ``LabKdc.shared()`` starts it on first use and
points both variables at it.

Lab host names do not resolve. Clients name the service principal with pypsrp's hostname override (the inventory
variable ``kerberos_hostname``) while dialling the host's loopback address, and the lab's krb5.conf turns DNS
canonicalisation and reverse lookups off, so nothing ever asks a resolver about a lab name.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import ClassVar

from procaudit.errors import ProcauditError

REALM = "PROCAUDIT.TEST"
DOMAIN = "procaudit.test"  # RFC 2606: .test never resolves anywhere
SERVICE = "HTTP"
TICKET_LIFETIME = "10m"

_TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class KdcUnavailable(ProcauditError):
    """The MIT KDC cannot run here (packages missing or it failed to start). The message says which."""


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in _SBIN:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_tools() -> list[str]:
    """The MIT KDC programs that are not installed (empty when the lab can run a KDC)."""
    return [tool for tool in _TOOLS if find_tool(tool) is None]


def gssapi_available() -> bool:
    """Whether the Python GSSAPI bindings pyspnego uses for Kerberos are importable."""
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError:
        return False
    return True


def host_fqdn(name: str) -> str:
    return f"{name}.{DOMAIN}".lower()


def offline_krb5_config(path: Path) -> Path:
    """Write a krb5.conf that never looks anything up on the network, for processes that run no lab realm.

    With the gssapi bindings installed, Negotiate tries Kerberos first; under a distribution's default krb5.conf
    that means DNS lookups (and KDC requests) for whatever realm it names. Tests point KRB5_CONFIG here so a
    Negotiate logon to a lab host stays on loopback: the realm's only KDC is a closed loopback port.
    """
    path.write_text(
        f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:1
    }}
""",
        encoding="utf-8",
    )
    return path


class LabKdc:
    """One KDC for the realm ``PROCAUDIT.TEST``. Use ``LabKdc.shared()``; ``start()``/``stop()`` for your own."""

    _shared: ClassVar[LabKdc | None] = None
    _shared_lock = threading.Lock()

    def __init__(self, realm: str = REALM) -> None:
        self.realm = realm
        self.workdir = Path(tempfile.mkdtemp(prefix="procaudit-kdc-"))
        os.chmod(self.workdir, 0o700)
        self.krb5_conf = self.workdir / "krb5.conf"
        self.kdc_conf = self.workdir / "kdc.conf"
        self.keytab = self.workdir / "http.keytab"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_lock = threading.Lock()
        self._services: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------------------
    @classmethod
    def shared(cls) -> LabKdc:
        """The process's KDC, started on first use; it stops when the process exits."""
        with cls._shared_lock:
            if cls._shared is None:
                kdc = cls()
                kdc.start()
                kdc.export_environment()
                atexit.register(kdc.stop)
                cls._shared = kdc
            return cls._shared

    def start(self) -> None:
        missing = missing_tools()
        if missing:
            raise KdcUnavailable(
                f"the lab's Kerberos realm needs MIT Kerberos ({', '.join(missing)} not found): "
                "apt-get install krb5-kdc krb5-admin-server"
            )
        if not gssapi_available():
            raise KdcUnavailable(
                "Kerberos needs the Python gssapi and krb5 packages: pip install 'procaudit[kerberos]'"
            )
        last_error = ""
        for _attempt in range(5):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            self._write_config()
            self._create_database()
            try:
                self._launch()
                return
            except KdcUnavailable as exc:
                last_error = str(exc)
                self._kill()
                for path in self.workdir.iterdir():
                    path.unlink()
        raise KdcUnavailable(last_error)

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def __enter__(self) -> LabKdc:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """What a client (or the lab's acceptor) needs in its environment to use this realm."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KTNAME": f"FILE:{self.keytab}"}

    def export_environment(self) -> None:
        os.environ.update(self.env)

    # -- principals --------------------------------------------------------------------------------------
    def principal(self, username: str) -> str:
        """The user principal for a lab account name (``LAB\\op`` or ``op`` or ``op@REALM`` -> ``op@REALM``)."""
        user = username.rpartition("\\")[2].partition("@")[0]
        return f"{user}@{self.realm}"

    def add_user(self, username: str, password: str) -> str:
        """Create (or reset) a user principal with this password; returns the principal name."""
        principal = self.principal(username)
        # The password travels on kadmin.local's stdin only. An existing principal gets the password reset, so a
        # second lab in the same process with the same account and password keeps working.
        self._admin(
            f"addprinc +requires_preauth -pw {_quote(password)} {principal}\ncpw -pw {_quote(password)} {principal}\n",
            ok=("already exists",),
        )  # pre-authentication as Active Directory requires it: a wrong password or a skewed clock fail at the KDC
        return principal

    def add_service(self, fqdn: str) -> str:
        """Create ``HTTP/<fqdn>`` (if absent) and put its current keys in the acceptor keytab."""
        principal = f"{SERVICE}/{fqdn}@{self.realm}"
        if principal in self._services:
            return principal
        self._admin(
            f"addprinc -randkey {principal}\nktadd -k {self.keytab} -norandkey {principal}\n", ok=("already exists",)
        )
        self._services.add(principal)
        return principal

    def remove_service(self, fqdn: str) -> None:
        """Delete ``HTTP/<fqdn>`` from the realm: clients then get 'Server not found in Kerberos database'."""
        principal = f"{SERVICE}/{fqdn}@{self.realm}"
        self._admin(f"delprinc -force {principal}\n", ok=("does not exist",))
        self._services.discard(principal)

    def kinit(self, username: str, password: str, ccache: Path, *, lifetime: str = TICKET_LIFETIME) -> None:
        """Get a TGT into ``ccache`` (a file, 0600), the password on kinit's stdin."""
        kinit = shutil.which("kinit")
        if kinit is None:
            raise KdcUnavailable("kinit not found: apt-get install krb5-user")
        result = subprocess.run(
            [kinit, "-l", lifetime, "-c", f"FILE:{ccache}", self.principal(username)],
            input=(password + "\n").encode(),
            capture_output=True,
            env={**os.environ, **self.env},
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise KdcUnavailable(f"kinit failed: {result.stderr.decode(errors='replace').strip()}")

    def _admin(self, commands: str, *, ok: tuple[str, ...] = ()) -> None:
        tool = find_tool("kadmin.local")
        assert tool is not None
        with self._admin_lock:
            result = subprocess.run(
                [tool, "-r", self.realm],
                input=commands.encode(),
                capture_output=True,
                env=self._kdc_env(),
                timeout=60,
                check=False,
            )
        errors = [
            line
            for line in result.stderr.decode(errors="replace").splitlines()
            if line.strip() and not any(marker in line for marker in ok) and "while " in line
        ]
        if result.returncode != 0 or errors:
            # kadmin.local echoes no passwords on stderr; the commands (which hold them) are never shown.
            raise KdcUnavailable(f"kadmin.local failed: {'; '.join(errors) or result.returncode}")

    # -- setup -------------------------------------------------------------------------------------------
    def _kdc_env(self) -> dict[str, str]:
        return {**os.environ, "KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}

    def _write_config(self) -> None:
        realm, port, work = self.realm, self.port, self.workdir
        krb5_conf = f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    ticket_lifetime = {TICKET_LIFETIME}
    forwardable = false
    default_ccache_name = FILE:{work}/ccache-%{{uid}}

[realms]
    {realm} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    .{DOMAIN} = {realm}
    {DOMAIN} = {realm}
"""
        kdc_conf = f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {realm} = {{
        database_name = {work}/principal
        key_stash_file = {work}/stash
        acl_file = {work}/kadm5.acl
        max_life = {TICKET_LIFETIME}
        max_renewable_life = 0
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{work}/kdc.log
    admin_server = FILE:{work}/kadmin.log
    default = FILE:{work}/krb5lib.log
"""
        for path, text in ((self.krb5_conf, krb5_conf), (self.kdc_conf, kdc_conf)):
            path.write_text(text, encoding="utf-8")
            os.chmod(path, 0o600)
        (work / "kadm5.acl").write_text("", encoding="utf-8")

    def _create_database(self) -> None:
        tool = find_tool("kdb5_util")
        assert tool is not None
        # The master key protects a database that lives for minutes in a private directory; it is random and
        # never leaves this process.
        result = subprocess.run(
            [tool, "-r", self.realm, "create", "-s", "-W"],
            input=(secrets.token_urlsafe(24) + "\n") * 2,
            text=True,
            capture_output=True,
            env=self._kdc_env(),
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise KdcUnavailable(f"kdb5_util create failed: {result.stderr.strip()}")

    def _launch(self) -> None:
        tool = find_tool("krb5kdc")
        assert tool is not None
        # stderr goes to a file: a pipe nobody reads would block the KDC once it filled up.
        stderr_path = self.workdir / "krb5kdc.stderr"
        with open(stderr_path, "wb") as stderr:
            self._process = subprocess.Popen(
                [tool, "-n", "-r", self.realm, "-P", str(self.workdir / "kdc.pid")],
                env=self._kdc_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = stderr_path.read_text(errors="replace") if stderr_path.exists() else ""
                log = (
                    (self.workdir / "kdc.log").read_text(errors="replace")
                    if (self.workdir / "kdc.log").exists()
                    else ""
                )
                raise KdcUnavailable(f"krb5kdc exited: {(err or log).strip()[-300:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise KdcUnavailable("krb5kdc did not start listening within 15 s")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _quote(value: str) -> str:
    """Quote a value for kadmin's command parser (it splits on blanks and honours double quotes)."""
    if any(c in value for c in '"\n\r'):
        raise ProcauditError("a lab Kerberos password cannot contain double quotes or line breaks")
    return f'"{value}"'
