"""How procaudit reaches hosts: the ``Connector`` seam and its PSRP implementation."""

from procaudit.transport.base import AuthMethod, ConnectionOptions, Connector, Credentials, HostTarget, Scheme

__all__ = ["AuthMethod", "ConnectionOptions", "Connector", "Credentials", "HostTarget", "Scheme"]
