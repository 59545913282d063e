"""Lab implementations of the shipped scripts, one module per area; importing a module registers it."""

from procaudit.lab.handlers import identity, readiness, verify

__all__ = ["identity", "readiness", "verify"]
