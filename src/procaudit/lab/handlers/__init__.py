"""Lab implementations of the shipped scripts, one module per area; importing a module registers it."""

from procaudit.lab.handlers import files, identity, scom

__all__ = ["files", "identity", "scom"]
