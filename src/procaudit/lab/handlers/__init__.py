"""Lab implementations of the shipped scripts, one module per area; importing a module registers it."""

from procaudit.lab.handlers import estimate, identity, readiness, verify

__all__ = ["estimate", "identity", "readiness", "verify"]
