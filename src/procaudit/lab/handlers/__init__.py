"""Lab implementations of the shipped scripts, one module per area; importing a module registers it."""

from procaudit.lab.handlers import deploy, directory, estimate, files, identity, readiness, scom, verify

__all__ = ["deploy", "directory", "estimate", "files", "identity", "readiness", "scom", "verify"]
