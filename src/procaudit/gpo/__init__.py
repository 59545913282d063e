"""The procaudit GPO: render it as a GPO backup for Import-GPO, and read/write registry.pol files."""
