"""Inventories: procaudit's own YAML format, or an Ansible YAML inventory as it is.

procaudit format::

    vars: {transport: https, auth: negotiate}        # every host
    groups:
      dcs:
        vars: {script_timeout: 300}
        hosts:
          dc01.corp.example: {address: 10.0.0.11}
          dc02.corp.example:
      servers:
        children: [web, sql]                         # nested groups

Ansible format: ``all:`` (or top-level groups) with ``hosts`` / ``children`` / ``vars``; the connection
variables ``ansible_host``, ``ansible_port``, ``ansible_user``, ``ansible_connection: psrp|winrm`` and the
``ansible_psrp_*`` / ``ansible_winrm_*`` transport and certificate variables are understood. Passwords in
an inventory are ignored on purpose: credentials come from the environment or a prompt.

Every error names the file, the line and what is wrong.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from procaudit.errors import InventoryError
from procaudit.transport.base import AUTH_METHODS, AuthMethod, ConnectionOptions, HostTarget, Scheme, option_problem

# procaudit's own connection variables and the types they take.
_CONNECTION_VARS: dict[str, type | tuple[type, ...]] = {
    "address": str,
    "port": int,
    "transport": str,
    "auth": str,
    "user": str,
    "ca_bundle": str,
    "cert_validation": bool,
    "connect_timeout": (int, float),
    "operation_timeout": int,
    "script_timeout": (int, float),
    "proxy": str,
    "kerberos_service": str,
    "kerberos_hostname": str,
    "certificate_pem": str,
    "certificate_key_pem": str,
}

# Ansible variable -> procaudit variable.
_ANSIBLE_VARS: dict[str, str] = {
    "ansible_host": "address",
    "ansible_port": "port",
    "ansible_psrp_port": "port",
    "ansible_winrm_port": "port",
    "ansible_user": "user",
    "ansible_psrp_user": "user",
    "ansible_winrm_user": "user",
    "ansible_psrp_protocol": "transport",
    "ansible_winrm_scheme": "transport",
    "ansible_psrp_auth": "auth",
    "ansible_winrm_transport": "auth",
    "ansible_psrp_cert_validation": "cert_validation",
    "ansible_winrm_server_cert_validation": "cert_validation",
    "ansible_psrp_ca_cert": "ca_bundle",
    "ansible_winrm_ca_trust_path": "ca_bundle",
    "ansible_psrp_connection_timeout": "connect_timeout",
    "ansible_winrm_connection_timeout": "connect_timeout",
    "ansible_psrp_operation_timeout": "operation_timeout",
    "ansible_winrm_operation_timeout_sec": "operation_timeout",
    "ansible_psrp_proxy": "proxy",
    "ansible_winrm_proxy": "proxy",
    "ansible_psrp_negotiate_service": "kerberos_service",
    "ansible_winrm_service": "kerberos_service",
    "ansible_psrp_negotiate_hostname_override": "kerberos_hostname",
    "ansible_winrm_kerberos_hostname_override": "kerberos_hostname",
    "ansible_psrp_certificate_pem": "certificate_pem",
    "ansible_winrm_cert_pem": "certificate_pem",
    "ansible_psrp_certificate_key_pem": "certificate_key_pem",
    "ansible_winrm_cert_key_pem": "certificate_key_pem",
}
_ANSIBLE_SECRETS = {"ansible_password", "ansible_psrp_password", "ansible_winrm_password", "ansible_become_password"}


class _Map(dict[str, Any]):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Map:  # type: ignore[override]
        result = _Map()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise yaml.constructor.ConstructorError(None, None, "keys must be plain names", key_node.start_mark)
            result[str(key)] = self.construct_object(value_node, deep=True)
            result.key_lines[str(key)] = key_node.start_mark.line + 1
        return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


@dataclass
class InventoryHost:
    name: str
    line: int
    groups: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Inventory:
    """Hosts with their merged variables, and the group tree."""

    path: Path
    format: str
    hosts: dict[str, InventoryHost]
    group_members: dict[str, set[str]]  # group -> hosts, children included
    notices: list[str] = field(default_factory=list)

    def select(self, limit: str | None) -> list[InventoryHost]:
        """Hosts matching an Ansible-style pattern list: ``web*,dcs,!dc02,&prod`` (globs on host or group names)."""
        if not limit:
            return [self.hosts[name] for name in sorted(self.hosts)]
        patterns = [p.strip() for p in limit.split(",") if p.strip()]
        # As in Ansible: a limit of only exclusions or intersections ('!dc02', '&prod') starts from every host.
        only_filters = all(p[0] in "!&" for p in patterns)
        selected: set[str] = set(self.hosts) if only_filters else set()
        for pattern in sorted(patterns, key=lambda p: p[:1] in "!&"):
            op, name = (pattern[0], pattern[1:]) if pattern[0] in "!&" else ("", pattern)
            matched = self._match(name)
            if not matched:
                groups = ", ".join(sorted(self.group_members)) or "none"
                raise InventoryError(
                    f"--limit pattern {name!r} matches no host or group in {self.path} (groups: {groups})"
                )
            if op == "!":
                selected -= matched
            elif op == "&":
                selected &= matched
            else:
                selected |= matched
        return [self.hosts[name] for name in sorted(selected)]

    def _match(self, pattern: str) -> set[str]:
        matched = {h for h in self.hosts if fnmatch.fnmatchcase(h, pattern)}
        for group, members in self.group_members.items():
            if fnmatch.fnmatchcase(group, pattern):
                matched |= members
        return matched


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory file (procaudit or Ansible YAML)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such inventory file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc}") from None
    try:
        document = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InventoryError(f"{where}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: invalid YAML: {exc}") from None
    if document is None:
        raise InventoryError(f"{path}: the inventory is empty")
    if not isinstance(document, _Map):
        raise InventoryError(f"{path}:1: an inventory must be a mapping (groups:, hosts:, or Ansible's all:)")
    if _is_ansible(document):
        return _Builder(path, "ansible").build_ansible(document)
    return _Builder(path, "procaudit").build_native(document)


def _is_ansible(document: _Map) -> bool:
    if "groups" in document or "vars" in document:
        return False
    if "all" in document:
        return True
    return all(isinstance(v, dict) and v and set(v) <= {"hosts", "children", "vars"} for v in document.values())


class _Builder:
    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self.host_lines: dict[str, int] = {}
        self.host_vars: dict[str, dict[str, Any]] = {}
        self.group_vars: dict[str, dict[str, Any]] = {}
        self.group_hosts: dict[str, set[str]] = {}
        self.group_children: dict[str, set[str]] = {}
        self.notices: list[str] = []

    def fail(self, line: int, message: str) -> InventoryError:
        return InventoryError(f"{self.path}:{line}: {message}")

    # -- procaudit format --------------------------------------------------------------------------------
    def build_native(self, doc: _Map) -> Inventory:
        unknown = set(doc) - {"vars", "groups", "hosts"}
        if unknown:
            key = sorted(unknown)[0]
            raise self.fail(doc.key_lines[key], f"unknown top-level key {key!r} (expected vars, groups, hosts)")
        self.group_vars["all"] = self._vars(doc.get("vars"), doc.key_lines.get("vars", doc.line), "all")
        self.group_hosts["all"] = set()
        if "hosts" in doc:
            self._hosts(doc["hosts"], "all", doc.key_lines["hosts"])
        groups = doc.get("groups") or _Map()
        if not isinstance(groups, _Map):
            raise self.fail(doc.key_lines.get("groups", doc.line), "'groups' must be a mapping of group names")
        for name, body in groups.items():
            self._native_group(name, body, groups.key_lines[name])
        return self._finish()

    def _native_group(self, name: str, body: Any, line: int) -> None:
        if name == "all":
            raise self.fail(line, "'all' is reserved; put shared settings under the top-level 'vars'")
        body = body if body is not None else _Map()
        if not isinstance(body, _Map):
            raise self.fail(line, f"group {name!r} must be a mapping with hosts, vars or children")
        unknown = set(body) - {"hosts", "vars", "children"}
        if unknown:
            key = sorted(unknown)[0]
            raise self.fail(
                body.key_lines[key], f"group {name!r}: unknown key {key!r} (expected hosts, vars, children)"
            )
        self.group_vars[name] = self._vars(body.get("vars"), body.key_lines.get("vars", line), name)
        self.group_hosts.setdefault(name, set())
        if "hosts" in body:
            self._hosts(body["hosts"], name, body.key_lines["hosts"])
        children = body.get("children") or []
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise self.fail(body.key_lines.get("children", line), f"group {name!r}: 'children' must be a list of names")
        self.group_children.setdefault(name, set()).update(children)

    # -- Ansible format ----------------------------------------------------------------------------------
    def build_ansible(self, doc: _Map) -> Inventory:
        self.group_hosts["all"] = set()
        for name, body in doc.items():
            self._ansible_group(name, body, doc.key_lines[name])
        if "all" not in self.group_vars:
            self.group_vars["all"] = {}
        self.group_children.setdefault("all", set()).update(g for g in doc if g != "all")
        return self._finish()

    def _ansible_group(self, name: str, body: Any, line: int) -> None:
        body = body if body is not None else _Map()
        if not isinstance(body, _Map):
            raise self.fail(line, f"group {name!r} must be a mapping with hosts, vars or children")
        unknown = set(body) - {"hosts", "vars", "children"}
        if unknown:
            key = sorted(unknown)[0]
            raise self.fail(
                body.key_lines[key], f"group {name!r}: unknown key {key!r} (expected hosts, vars, children)"
            )
        self.group_vars.setdefault(name, {}).update(
            self._vars(body.get("vars"), body.key_lines.get("vars", line), name)
        )
        self.group_hosts.setdefault(name, set())
        if "hosts" in body:
            self._hosts(body["hosts"], name, body.key_lines["hosts"])
        children = body.get("children") or _Map()
        if not isinstance(children, _Map):
            raise self.fail(body.key_lines.get("children", line), f"group {name!r}: 'children' must be a mapping")
        for child, child_body in children.items():
            self.group_children.setdefault(name, set()).add(child)
            self._ansible_group(child, child_body, children.key_lines[child])

    # -- shared ------------------------------------------------------------------------------------------
    def _hosts(self, hosts: Any, group: str, line: int) -> None:
        if hosts is None:
            return
        if isinstance(hosts, list) and self.fmt == "procaudit" and all(isinstance(h, str) for h in hosts):
            hosts = {h: None for h in hosts}
            lines: dict[str, int] = {h: line for h in hosts}
        elif isinstance(hosts, _Map):
            lines = hosts.key_lines
        else:
            raise self.fail(line, f"group {group!r}: 'hosts' must be a mapping of host names to their settings")
        for name, body in hosts.items():
            host_line = lines.get(name, line)
            if not name or any(c.isspace() for c in name):
                raise self.fail(host_line, f"invalid host name {name!r}")
            host_vars = self._vars(body, host_line, f"host {name!r}")
            self.host_lines.setdefault(name, host_line)
            self.host_vars.setdefault(name, {}).update(host_vars)
            self.group_hosts.setdefault(group, set()).add(name)

    def _vars(self, raw: Any, line: int, owner: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, _Map):
            raise self.fail(line, f"{owner}: settings must be a mapping of name: value")
        result: dict[str, Any] = {}
        for key, value in raw.items():
            key_line = raw.key_lines.get(key, line)
            if isinstance(value, str) and "{{" in value:
                raise self.fail(key_line, f"{owner}: {key} uses a Jinja template, which procaudit does not evaluate")
            if self.fmt == "ansible":
                if key in _ANSIBLE_SECRETS:
                    self.notices.append(
                        f"{self.path}:{key_line}: {key} ignored; procaudit reads passwords only from "
                        "PROCAUDIT_PASSWORD or a prompt"
                    )
                    continue
                if key == "ansible_connection":
                    if value not in ("psrp", "winrm"):
                        result["_non_winrm"] = (value, key_line)
                    continue
                key, value = self._ansible_value(key, value, key_line, owner)
            if key in _CONNECTION_VARS:
                value = self._checked(key, value, key_line, owner)
            result[key] = value
        return result

    def _ansible_value(self, key: str, value: Any, line: int, owner: str) -> tuple[str, Any]:
        mapped = _ANSIBLE_VARS.get(key)
        if mapped is None:
            return key, value
        if mapped == "cert_validation" and isinstance(value, str):
            if value not in ("ignore", "validate"):
                raise self.fail(line, f"{owner}: {key} must be 'validate' or 'ignore', not {value!r}")
            return mapped, value == "validate"
        if mapped == "auth" and isinstance(value, list):
            supported = [v for v in value if v in AUTH_METHODS]
            if not supported:
                raise self.fail(line, f"{owner}: none of {value} is supported (use {', '.join(AUTH_METHODS)})")
            return mapped, supported[0]
        return mapped, value

    def _checked(self, key: str, value: Any, line: int, owner: str) -> Any:
        expected = _CONNECTION_VARS[key]
        if expected in (int, (int, float)) and isinstance(value, bool):
            raise self.fail(line, f"{owner}: {key} must be a number, not {value!r}")
        if not isinstance(value, expected):
            names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
            raise self.fail(line, f"{owner}: {key} must be {names}, not {value!r}")
        if key == "transport" and value not in ("https", "http"):
            raise self.fail(line, f"{owner}: transport must be https or http, not {value!r}")
        if key == "auth":
            if value == "basic":
                raise self.fail(line, f"{owner}: Basic auth is not supported; use negotiate, kerberos or ntlm")
            if value not in AUTH_METHODS:
                raise self.fail(line, f"{owner}: auth must be one of {', '.join(AUTH_METHODS)}, not {value!r}")
        problem = option_problem(key, value) if key == "port" or key.endswith("timeout") else None
        if problem is not None:
            raise self.fail(line, f"{owner}: {key} {problem}, not {value!r}")
        return value

    def _finish(self) -> Inventory:
        for group, children in self.group_children.items():
            for child in children:
                if child not in self.group_hosts:
                    raise InventoryError(f"{self.path}: group {group!r} lists unknown child group {child!r}")
        members: dict[str, set[str]] = {}
        parents: dict[str, set[str]] = {}
        for group, children in self.group_children.items():
            for child in children:
                parents.setdefault(child, set()).add(group)

        def collect(group: str, trail: tuple[str, ...]) -> set[str]:
            if group in trail:
                raise InventoryError(f"{self.path}: group cycle {' -> '.join([*trail, group])}")
            if group in members:
                return members[group]
            found = set(self.group_hosts.get(group, set()))
            for child in sorted(self.group_children.get(group, set())):
                found |= collect(child, (*trail, group))
            members[group] = found
            return found

        for group in sorted(self.group_hosts):
            collect(group, ())
        members["all"] = set(self.host_vars)

        # A group's depth is its longest path from a top-level group (Ansible's rule), whatever order the file
        # lists groups in: a child group is always deeper than each of its parents, so its vars win over theirs.
        depth: dict[str, int] = {"all": -1}

        def depth_of(group: str) -> int:
            if group not in depth:
                depth[group] = max((depth_of(p) + 1 for p in parents.get(group, set()) if p != "all"), default=0)
            return depth[group]

        for group in members:
            depth_of(group)
        hosts: dict[str, InventoryHost] = {}
        for name in sorted(self.host_vars):
            groups = sorted((g for g, m in members.items() if name in m), key=lambda g: (depth.get(g, 0), g))
            merged: dict[str, Any] = {}
            for group in groups:  # shallow groups first, so deeper (more specific) groups win; host vars last
                merged.update(self.group_vars.get(group, {}))
            merged.update(self.host_vars[name])
            non_winrm = merged.pop("_non_winrm", None)
            host = InventoryHost(name, self.host_lines[name], [g for g in groups if g != "all"], merged)
            if non_winrm is not None:
                host.vars["_non_winrm"] = non_winrm
            hosts[name] = host
        if not hosts:
            raise InventoryError(f"{self.path}: the inventory lists no hosts")
        return Inventory(self.path, self.fmt, hosts, members, self.notices)


@dataclass(frozen=True)
class Overrides:
    """Connection settings given on the command line; ``None`` means 'not given' (the inventory decides)."""

    transport: str | None = None
    port: int | None = None
    auth: str | None = None
    user: str | None = None
    ca_bundle: Path | None = None
    no_verify: bool = False
    connect_timeout: float | None = None
    operation_timeout: int | None = None
    script_timeout: float | None = None


def unsafe_settings(targets: Iterable[HostTarget], overrides: Overrides) -> list[str]:
    """Warnings about inventory choices that weaken security: certificate validation off, CredSSP delegation.

    ``--no-verify`` is left out: whoever passed it was warned about it already.
    """
    targets = list(targets)
    warnings = []
    unchecked = sorted(t.name for t in targets if not t.options.cert_validation and t.options.scheme == "https")
    if unchecked and not overrides.no_verify:
        warnings.append(
            f"the inventory turns HTTPS certificate validation off for {_some(unchecked)}: anyone on the path can "
            "impersonate these hosts and capture the credentials"
        )
    delegating = sorted(t.name for t in targets if t.options.auth == "credssp")
    if delegating:
        warnings.append(
            f"CredSSP is selected for {_some(delegating)}: it hands the password itself to each host, where anyone "
            "in control of the host can reuse it; prefer negotiate or kerberos"
        )
    return warnings


def _file(inventory: Inventory, value: str | None) -> Path | None:
    """A file an inventory names: ``~`` expanded, a relative path taken from the inventory's own folder."""
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (inventory.path.parent / path).resolve()


def _some(names: list[str], shown: int = 3) -> str:
    head = ", ".join(names[:shown])
    return f"{len(names)} host(s) ({head}{', ...' if len(names) > shown else ''})"


def to_targets(inventory: Inventory, hosts: Iterable[InventoryHost], overrides: Overrides) -> list[HostTarget]:
    """Resolve each host's connection settings: command line > host > group > all > safe defaults."""
    targets = []
    for host in hosts:
        if "_non_winrm" in host.vars:
            connection, line = host.vars["_non_winrm"]
            raise InventoryError(
                f"{inventory.path}:{line}: host {host.name!r} uses ansible_connection={connection}; procaudit speaks "
                "only WinRM (psrp/winrm). Exclude it with --limit."
            )
        v = host.vars
        defaults = ConnectionOptions()
        ca_bundle = overrides.ca_bundle or _file(inventory, v.get("ca_bundle"))
        port = overrides.port or v.get("port")
        scheme = overrides.transport or v.get("transport")
        if scheme is None:
            # Ansible's psrp and winrm plugins speak HTTP to port 5985 and HTTPS to any other port unless told.
            scheme = "http" if inventory.format == "ansible" and port == 5985 else defaults.scheme
        options = ConnectionOptions(
            scheme=cast(Scheme, scheme),
            port=port,
            auth=cast(AuthMethod, overrides.auth or v.get("auth", defaults.auth)),
            cert_validation=False if overrides.no_verify else v.get("cert_validation", True),
            ca_bundle=ca_bundle,
            connect_timeout=float(overrides.connect_timeout or v.get("connect_timeout", defaults.connect_timeout)),
            operation_timeout=int(
                overrides.operation_timeout or v.get("operation_timeout", defaults.operation_timeout)
            ),
            script_timeout=float(overrides.script_timeout or v.get("script_timeout", defaults.script_timeout)),
            proxy=v.get("proxy"),
            kerberos_service=v.get("kerberos_service", defaults.kerberos_service),
            kerberos_hostname=v.get("kerberos_hostname"),
            certificate_pem=_file(inventory, v.get("certificate_pem")),
            certificate_key_pem=_file(inventory, v.get("certificate_key_pem")),
        )
        free = tuple(sorted((k, val) for k, val in v.items() if k not in _CONNECTION_VARS))
        targets.append(
            HostTarget(
                name=host.name,
                address=v.get("address", host.name),
                options=options,
                username=overrides.user or v.get("user"),
                vars=(*free, ("groups", tuple(host.groups))),
            )
        )
    return targets
