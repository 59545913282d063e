"""Pure parsers: raw Windows output (text, CSV, INF, XML) in, typed facts (pydantic models) out.

Remote scripts stay thin and return what Windows printed; these modules turn it into facts. None of them
does I/O. Malformed input raises ``procaudit.errors.ParseError`` naming the source and, where it can, the line.

- ``auditpol``: ``auditpol /backup`` CSV and GPO ``audit.csv``; the subcategory GUID table.
- ``secedit``: security templates (``secedit /export``, ``GptTmpl.inf``).
- ``wevtutil``: ``wevtutil gl`` channel configuration.
- ``sddl``: SDDL, and who may read an event log channel.
- ``gpresult``: RSoP and GPMC report XML, with the winning GPO per setting.
- ``osinfo``: command-line support, 4688 event version and role from OS version fields.
"""
