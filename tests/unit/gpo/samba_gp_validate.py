"""Independent validator: parse (and write) GPO files with Samba's ``samba.gp_parse`` and print JSON.

Runs under the *system* Python (Debian ``python3-samba``), never the project venv, and imports nothing
from procaudit, so what it reports is Samba's reading of our files, not ours.

Usage::

    /usr/bin/python3 samba_gp_validate.py pol FILE    # registry.pol -> entries
    /usr/bin/python3 samba_gp_validate.py csv FILE    # audit.csv    -> header and rows
    /usr/bin/python3 samba_gp_validate.py inf FILE    # GptTmpl.inf  -> sections
    /usr/bin/python3 samba_gp_validate.py serve       # JSON lines on stdin -> JSON lines on stdout

``serve`` answers one request per line: ``{"op": "parse_pol", "hex": ...}``,
``{"op": "write_pol", "entries": [...]}``, ``{"op": "parse_csv", "hex": ...}``, ``{"op": "parse_inf", "hex": ...}``.
Entries are ``{"key", "value_name", "type", "size", "data"}``; ``data`` is a string for REG_SZ and
REG_EXPAND_SZ, an integer for the DWORD and QWORD types and ``{"hex": ...}`` for every other type.
"""

import json
import sys

from samba.dcerpc import misc, preg
from samba.gp_parse.gp_csv import GPAuditCsvParser
from samba.gp_parse.gp_inf import GptTmplInfParser
from samba.gp_parse.gp_pol import GPPolParser
from samba.ndr import ndr_pack

_TEXT_TYPES = (misc.REG_SZ, misc.REG_EXPAND_SZ)
_INT_TYPES = (misc.REG_DWORD, misc.REG_DWORD_BIG_ENDIAN, misc.REG_QWORD)


def parse_pol(data):
    parser = GPPolParser()
    parser.parse(data)
    entries = []
    for entry in parser.pol_file.entries:
        if entry.type in _TEXT_TYPES or entry.type in _INT_TYPES:
            value = entry.data
        else:
            value = {"hex": bytes(entry.data or b"").hex()}
        entries.append(
            {"key": entry.keyname, "value_name": entry.valuename, "type": entry.type, "size": entry.size, "data": value}
        )
    return {
        "signature": parser.pol_file.header.signature,
        "version": parser.pol_file.header.version,
        "num_entries": parser.pol_file.num_entries,
        "entries": entries,
        # Samba re-serialises what it parsed; equal bytes mean our encoding is the canonical one.
        "repack_identical": ndr_pack(parser.pol_file) == data,
    }


def write_pol(entries):
    pol = preg.file()
    pol.header.signature = "PReg"
    pol.header.version = 1
    packed = []
    for item in entries:
        entry = preg.entry()
        entry.keyname = item["key"]
        entry.valuename = item["value_name"]
        entry.type = item["type"]
        data = item["data"]
        entry.data = bytes.fromhex(data["hex"]) if isinstance(data, dict) else data
        packed.append(entry)
    pol.entries = packed
    pol.num_entries = len(packed)
    return ndr_pack(pol)


def parse_csv(data):
    parser = GPAuditCsvParser()
    parser.parse(data)
    return {"header": parser.header, "rows": parser.lines}


def parse_inf(data):
    parser = GptTmplInfParser()
    parser.parse(data)
    return {"sections": {name: section.param_list for name, section in parser.sections.items()}}


def handle(request):
    op = request["op"]
    if op == "parse_pol":
        return parse_pol(bytes.fromhex(request["hex"]))
    if op == "write_pol":
        return {"hex": write_pol(request["entries"]).hex()}
    if op == "parse_csv":
        return parse_csv(bytes.fromhex(request["hex"]))
    if op == "parse_inf":
        return parse_inf(bytes.fromhex(request["hex"]))
    raise ValueError(f"unknown op {op!r}")


def serve():
    for line in sys.stdin:
        try:
            reply = {"ok": True, "result": handle(json.loads(line))}
        except Exception as exc:  # report Samba's failure to the test instead of dying
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def main(argv):
    if argv[1:] == ["serve"]:
        serve()
        return 0
    if len(argv) != 3 or argv[1] not in ("pol", "csv", "inf"):
        sys.stderr.write(__doc__)
        return 2
    with open(argv[2], "rb") as handle_:
        data = handle_.read()
    result = {"pol": parse_pol, "csv": parse_csv, "inf": parse_inf}[argv[1]](data)
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
