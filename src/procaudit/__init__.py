"""procaudit: switch on Windows process-creation auditing (event 4688 with command line) safely."""

__version__ = "0.1.0"
