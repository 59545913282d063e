"""Stream process-creation events out of event files.

Formats (detected from the content, not the extension, however long the first line or leading white space):

- ``.evtx`` (the ``ElfFile`` signature), read with pyevtx-rs (the ``evtx`` package);
- JSON lines: one event object per line (OTRF / NXLog / Winlogbeat / evtx-JSON shapes);
- JSON documents: one object (a Sigma regression ``<rule-id>.json``), a top-level array of objects, or
  several objects one after the other;
- XML: one ``<Event>`` (as Event Viewer, ``Get-WinEvent ... ToXml()`` or WEF render it), or many of them inside
  any wrapper element (``wevtutil qe /f:xml /e:Events``).

Memory stays bounded: evtx and JSON lines are read record by record, JSON documents through an incremental
decoder, XML with ``iterparse`` clearing each event once read. A record larger than ``MAX_RECORD_CHARS`` is
not read into memory.

Damaged or unreadable records are skipped and counted (``ReadStats.skipped``); events that are not a 4688 or a
Sysmon event 1 are counted as ``ignored``. A file that cannot be read at all raises ``EventFileError`` naming it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, cast

from procaudit.errors import EventFileError
from procaudit.events.mapping import MalformedRecord, NotProcessCreation, event_from_dict, parse_time
from procaudit.events.model import ProcessCreationEvent

EventFormat = Literal["evtx", "jsonl", "json", "xml"]

#: Largest single record (JSON line, JSON value, XML event) we read, in characters.
MAX_RECORD_CHARS = 16 * 1024 * 1024
#: After this many damaged records in a row, the file is given up as unreadable.
MAX_CONSECUTIVE_ERRORS = 1000
_CHUNK = 1024 * 1024
_EVTX_MAGIC = b"ElfFile\x00"
#: An .evtx file: a 4 KiB header, then 64 KiB chunks.
EVTX_HEADER_SIZE = 4096
EVTX_CHUNK_SIZE = 65536
_CHUNK_NUMBER = re.compile(r"\bchunk number (\d+)")

#: Cheap checks of a record's raw JSON text, by kind (``security`` for a 4688, ``sysmon`` for a Sysmon event 1),
#: given where the search for EventData may start (past the System members already recognised, or 0): ``False``
#: promises that no rule can match the record, so it is counted but never decoded. Used for evtx only,
#: whose JSON comes from one known writer (pyevtx-rs); see ``procaudit.detections.prefilter``.
RawFilters = Mapping[str, Callable[[str, int], bool]]


@dataclass
class ReadStats:
    """What reading one or more files met, beyond the events it yielded."""

    events: int = 0
    skipped: int = 0
    ignored: int = 0
    first_time: datetime | None = None
    last_time: datetime | None = None
    problems: list[str] = field(default_factory=list)

    def note_time(self, time: datetime | None) -> None:
        """Widen the time span seen."""
        if time is None:
            return
        if self.first_time is None or time < self.first_time:
            self.first_time = time
        if self.last_time is None or time > self.last_time:
            self.last_time = time

    def skip(self, problem: str) -> None:
        """Count one skipped record, keeping the first few reasons for the report."""
        self.skipped += 1
        if len(self.problems) < 10:
            self.problems.append(problem)


_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_DETECT_CHUNK = 64 * 1024


def _first_byte(handle: IO[bytes]) -> tuple[bytes, bytes]:
    """The first byte that is not white space (after an optional UTF-8 BOM), and what was read after it."""
    chunk = handle.read(_DETECT_CHUNK).removeprefix(_BOM)
    while chunk:
        rest = chunk.lstrip(_WHITESPACE)
        if rest:
            return rest[:1], rest[1:]
        chunk = handle.read(_DETECT_CHUNK)
    return b"", b""


def _first_line_closes(handle: IO[bytes], rest: bytes) -> bool:
    """Whether the line that starts with ``{`` (``rest`` follows it) ends with ``}``: a complete JSON object.

    Reads to the end of that line however long it is, up to ``MAX_RECORD_CHARS`` bytes; a line longer than that
    counts as a JSON line (the JSON-lines reader skips and counts an oversized line).
    """
    last = b"{"
    seen = 0
    chunk = rest
    while True:
        line, newline, _ = chunk.partition(b"\n")
        stripped = line.rstrip(_WHITESPACE)
        if stripped:
            last = stripped[-1:]
        if newline:
            return last == b"}"
        seen += len(line)
        if seen >= MAX_RECORD_CHARS:
            return True
        chunk = handle.read(_DETECT_CHUNK)
        if not chunk:
            return last == b"}"


def detect_format(path: Path) -> EventFormat:
    """Tell the format of an event file from its content: the evtx signature, else the first byte that is not
    white space, and for ``{`` whether the first line holds a whole object (JSON lines) or not (a JSON document).
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_EVTX_MAGIC))
            if head.startswith(_EVTX_MAGIC):
                return "evtx"
            if head.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise EventFileError(f"{path}: UTF-16 text is not supported; save the export as UTF-8")
            handle.seek(0)
            first, rest = _first_byte(handle)
            if first == b"{":
                return "jsonl" if _first_line_closes(handle, rest) else "json"
    except OSError as exc:
        raise EventFileError(f"{path}: cannot open the event file ({exc.strerror or exc})") from exc
    if not first:
        raise EventFileError(f"{path}: the event file is empty")
    if first == b"<":
        return "xml"
    if first == b"[":
        return "json"
    raise EventFileError(f"{path}: not a supported event file (expected .evtx, JSON lines, a JSON export or event XML)")


def evtx_chunk_count(path: Path) -> int:
    """How many chunks an .evtx file's size leaves room for after its header (a short last one counts)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EventFileError(f"{path}: cannot open the event file ({exc.strerror or exc})") from exc
    return max(0, -(-(size - EVTX_HEADER_SIZE) // EVTX_CHUNK_SIZE))


def read_events(
    path: Path | str,
    stats: ReadStats | None = None,
    *,
    raw_filters: RawFilters | None = None,
    chunks: tuple[int, int] | None = None,
) -> Iterator[ProcessCreationEvent]:
    """Yield every 4688 / Sysmon 1 event of one file, in file order.

    Args:
        path: the event file.
        stats: counters to update (events, skipped, ignored, time span).
        raw_filters: optional cheap pre-checks of a record's raw JSON text (evtx only), see ``RawFilters``.
        chunks: for an .evtx file, read only its chunks ``[first, end)`` (see ``evtx_chunk_count``). A chunk holds
            whole records with its own string and template tables, so ranges can be read apart, even in parallel.

    Raises:
        EventFileError: the file cannot be read at all (missing, empty, unknown format, broken structure).
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    fmt = detect_format(path)
    if chunks is not None and fmt != "evtx":
        raise ValueError(f"{path}: only .evtx files are read by chunk")
    if fmt == "evtx":
        yield from _read_evtx(path, stats, raw_filters, chunks)
    elif fmt == "jsonl":
        yield from _read_jsonl(path, stats)
    elif fmt == "json":
        yield from _read_json_stream(path, stats)
    else:
        yield from _read_xml(path, stats)


def _accept(doc: Any, path: Path, stats: ReadStats, record_number: int) -> ProcessCreationEvent | None:
    try:
        event = event_from_dict(doc, source_file=str(path), record_number=record_number)
    except NotProcessCreation:
        stats.ignored += 1
        return None
    except MalformedRecord as exc:
        stats.skip(f"{path}: record {record_number}: {exc}")
        return None
    stats.events += 1
    stats.note_time(event.time)
    return event


# --- evtx ---------------------------------------------------------------------------------------------

# How pyevtx-rs starts the JSON of a Security 4688 and of a Sysmon event 1, up to the event's time: provider and
# event id come first in System, and the members up to TimeCreated are fixed for these events (the version is one
# digit). A record that starts otherwise is classified the slower way (``_raw_kind``) and its time read by search.
_HEAD = '{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{'
_TIME_KEY = '"TimeCreated":{"#attributes":{"SystemTime":"'
_SECURITY_HEADS = tuple(
    _HEAD + '"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing",'
    f'"Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"}}}},"EventID":4688,"Version":{version},"Level":0,"Task":13312,'
    f'"Opcode":0,"Keywords":"0x8020000000000000",{_TIME_KEY}'
    for version in range(10)
)
_SYSMON_HEADS = tuple(
    _HEAD + '"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon",'
    f'"Guid":"5770385F-C22A-43E0-BF4C-06F5698FFBD9"}}}},"EventID":1,"Version":{version},"Level":4,"Task":1,'
    f'"Opcode":0,"Keywords":"0x8000000000000000",{_TIME_KEY}'
    for version in range(10)
)
_SECURITY_TIME = len(_SECURITY_HEADS[0])
_SYSMON_TIME = len(_SYSMON_HEADS[0])
_STAMP = len("2021-11-03T08:34:27.978376Z")
_SECURITY_STAMP_END = _SECURITY_TIME + _STAMP
_SYSMON_STAMP_END = _SYSMON_TIME + _STAMP
_NO_FIRST_STAMP = "~"  # sorts after every stamp


def _raw_kind(text: str) -> str | None:
    """Classify an evtx record from its raw JSON without decoding it: ``security``, ``sysmon``, ``other``.

    ``None`` when the text does not look as expected (then the record is decoded the slow way).
    """
    if text.startswith(_SECURITY_HEADS):
        return "security"
    if text.startswith(_SYSMON_HEADS):
        return "sysmon"
    at = text.find('"EventID":')
    if at == -1:
        return None
    pos = at + 10
    if text.startswith("{", pos):
        pos = text.find('"#text":', pos)
        if pos == -1:
            return None
        pos += 8
    end = pos
    while end < len(text) and text[end].isdigit():
        end += 1
    if end == pos:
        return None
    event_id = int(text[pos:end])
    head = text[:at]
    if event_id == 4688 and '"Name":"Microsoft-Windows-Security-Auditing"' in head:
        return "security"
    if event_id == 1 and '"Name":"Microsoft-Windows-Sysmon"' in head:
        return "sysmon"
    if '"Name":"' in head:
        return "other"
    return None


def _raw_time(text: str) -> str | None:
    """The event's System/TimeCreated/@SystemTime as written, which is what decoding reads as its time (the
    record's own "timestamp" is when it was written, which can differ)."""
    at = text.find(_TIME_KEY)
    if at == -1:
        return None
    at += len(_TIME_KEY)
    end = text.find('"', at)
    return text[at:end] if end != -1 else None


def _chunk_range(path: Path, chunks: tuple[int, int]) -> io.BytesIO:
    """The file's header followed by its chunks ``[first, end)``: an .evtx file of its own to pyevtx-rs (which walks
    the chunks that follow the header, whatever the header's counters say)."""
    first, end = chunks
    try:
        with path.open("rb") as handle:
            header = handle.read(EVTX_HEADER_SIZE)
            handle.seek(EVTX_HEADER_SIZE + first * EVTX_CHUNK_SIZE)
            body = handle.read((end - first) * EVTX_CHUNK_SIZE)
    except OSError as exc:
        raise EventFileError(f"{path}: cannot open the event file ({exc.strerror or exc})") from exc
    return io.BytesIO(header + body)


def _read_evtx(
    path: Path, stats: ReadStats, raw_filters: RawFilters | None, chunks: tuple[int, int] | None
) -> Iterator[ProcessCreationEvent]:
    from evtx import PyEvtxParser

    try:
        parser = PyEvtxParser(str(path) if chunks is None else _chunk_range(path, chunks))
    except (OSError, RuntimeError, ValueError) as exc:
        raise EventFileError(f"{path}: not a readable .evtx file ({exc})") from exc
    # The stub types records as Optional[Any]; pyevtx-rs yields a dict per record and ends with StopIteration.
    next_record = cast("Callable[[], dict[str, Any]]", parser.records_json().__next__)
    filters = raw_filters or {}
    security_check = filters.get("security")
    sysmon_check = filters.get("sysmon")
    errors_in_a_row = 0
    number = 0
    number_at_last_error = -1
    # Records the filter settled are only counted, here, and added to ``stats`` once at the end. The stamps are
    # compared as text, which is time order in the one form pyevtx-rs writes ("YYYY-MM-DDTHH:MM:SS.ffffffZ").
    counted = 0
    ignored = 0
    first_stamp = _NO_FIRST_STAMP
    last_stamp = ""
    try:
        while True:
            try:
                record = next_record()
            except StopIteration:
                break
            except (RuntimeError, OSError, ValueError) as exc:
                # pyevtx-rs reports a damaged chunk or record and carries on with the next one. It numbers chunks
                # from the start of what it was given: a range's are renumbered to the file's.
                message = str(exc)
                if chunks is not None:
                    message = _CHUNK_NUMBER.sub(lambda m: f"chunk number {int(m[1]) + chunks[0]}", message)
                stats.skip(f"{path}: {message}")
                errors_in_a_row = errors_in_a_row + 1 if number == number_at_last_error else 1
                number_at_last_error = number
                if errors_in_a_row > MAX_CONSECUTIVE_ERRORS:
                    raise EventFileError(f"{path}: too many damaged records in a row; the file is unreadable") from exc
                continue
            number += 1
            text: str = record["data"]
            if raw_filters is not None:
                # The hot path, once per record: a record whose head was recognised is settled by the filter
                # without decoding when no rule can match it and its time stamp has the usual form.
                if security_check is not None and text.startswith(_SECURITY_HEADS):
                    check, time_at, stamp_end = security_check, _SECURITY_TIME, _SECURITY_STAMP_END
                elif sysmon_check is not None and text.startswith(_SYSMON_HEADS):
                    check, time_at, stamp_end = sysmon_check, _SYSMON_TIME, _SYSMON_STAMP_END
                elif text.startswith(_SECURITY_HEADS + _SYSMON_HEADS):
                    check = None  # a recognised kind with no filter: decode
                else:
                    kind = _raw_kind(text)
                    if kind == "other":
                        ignored += 1
                        continue
                    check = filters.get(kind) if kind is not None else None
                    if check is not None and not check(text, 0):
                        raw_stamp = _raw_time(text)
                        if raw_stamp is not None:  # else decode after all: no time where decoding would read it
                            counted += 1
                            stats.note_time(parse_time(raw_stamp))
                            continue
                    check = None
                if check is not None and not check(text, stamp_end) and text[stamp_end : stamp_end + 1] == '"':
                    stamp = text[time_at:stamp_end]
                    if stamp[4] == "-" and stamp[10] == "T" and stamp[26] == "Z":
                        counted += 1
                        if stamp < first_stamp:
                            first_stamp = stamp
                        if stamp > last_stamp:
                            last_stamp = stamp
                        continue
            try:
                doc = json.loads(text)
            except ValueError as exc:
                stats.skip(f"{path}: record {record.get('event_record_id', number)}: bad JSON from the parser ({exc})")
                continue
            event = _accept(doc, path, stats, record.get("event_record_id") or number)
            if event is not None:
                yield event
    finally:
        stats.events += counted
        stats.ignored += ignored
        if counted:
            stats.note_time(parse_time(first_stamp) if first_stamp != _NO_FIRST_STAMP else None)
            stats.note_time(parse_time(last_stamp) if last_stamp else None)


# --- JSON lines -------------------------------------------------------------------------------------------


def _open_text(path: Path) -> IO[str]:
    try:
        return path.open("r", encoding="utf-8-sig", errors="replace", newline="")
    except OSError as exc:
        raise EventFileError(f"{path}: cannot open the event file ({exc.strerror or exc})") from exc


def _read_jsonl(path: Path, stats: ReadStats) -> Iterator[ProcessCreationEvent]:
    with _open_text(path) as handle:
        number = 0
        while True:
            line = handle.readline(MAX_RECORD_CHARS)
            if not line:
                break
            number += 1
            if len(line) >= MAX_RECORD_CHARS and not line.endswith("\n"):
                # Drain the rest of the oversized line without holding it.
                while (more := handle.readline(MAX_RECORD_CHARS)) and not more.endswith("\n"):
                    pass
                stats.skip(f"{path}: line {number}: longer than {MAX_RECORD_CHARS} characters")
                continue
            line = line.strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError as exc:
                stats.skip(f"{path}: line {number}: not JSON ({exc.__class__.__name__})")
                continue
            event = _accept(doc, path, stats, number)
            if event is not None:
                yield event


# --- JSON documents ----------------------------------------------------------------------------------------


def _read_json_stream(path: Path, stats: ReadStats) -> Iterator[ProcessCreationEvent]:
    """Objects one after another, or a top-level array of objects, decoded incrementally."""
    decoder = json.JSONDecoder()
    with _open_text(path) as handle:
        buffer = ""
        pos = 0
        eof = False
        consumed = 0  # characters dropped from the front of the buffer, for error offsets

        def fill() -> bool:
            nonlocal buffer, pos, eof, consumed
            if eof:
                return False
            chunk = handle.read(_CHUNK)
            if not chunk:
                eof = True
                return False
            consumed += pos
            buffer = buffer[pos:] + chunk
            pos = 0
            return True

        def skip_space() -> str:
            nonlocal pos
            while True:
                while pos < len(buffer) and buffer[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buffer):
                    return buffer[pos]
                if not fill():
                    return ""

        first = skip_space()
        in_array = first == "["
        if in_array:
            pos += 1
        number = 0
        while True:
            char = skip_space()
            if not char:
                if in_array:
                    raise EventFileError(f"{path}: the JSON array is not closed (file truncated?)")
                return
            if in_array and char == "]":
                return
            if in_array and number > 0:
                if char != ",":
                    raise EventFileError(f"{path}: expected ',' between array items at offset {consumed + pos}")
                pos += 1
                skip_space()
            while True:
                try:
                    doc, end = decoder.raw_decode(buffer, pos)
                    break
                except ValueError as exc:
                    if len(buffer) - pos < MAX_RECORD_CHARS and fill():
                        continue
                    what = "too large" if len(buffer) - pos >= MAX_RECORD_CHARS else "not valid JSON"
                    raise EventFileError(
                        f"{path}: record {number + 1} at offset {consumed + pos} is {what} ({exc})"
                    ) from exc
            pos = end
            number += 1
            event = _accept(doc, path, stats, number)
            if event is not None:
                yield event


# --- XML ------------------------------------------------------------------------------------------------------


def _local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1]


def _xml_event_to_doc(element: Any) -> dict[str, Any]:
    """Turn an ``<Event>`` element into the evtx-JSON shape ``event_from_dict`` reads."""
    system: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for part in element:
        name = _local(part.tag)
        if name == "System":
            for item in part:
                key = _local(item.tag)
                if key in ("Provider", "TimeCreated"):
                    system[key] = {"#attributes": dict(item.attrib)}
                else:
                    system[key] = (item.text or "").strip()
        elif name == "EventData":
            for item in part:
                if _local(item.tag) == "Data" and "Name" in item.attrib:
                    data[item.attrib["Name"]] = item.text or ""
    return {"Event": {"System": system, "EventData": data}}


def _read_xml(path: Path, stats: ReadStats) -> Iterator[ProcessCreationEvent]:
    from lxml import etree

    number = 0
    try:
        context = etree.iterparse(
            str(path),
            events=("end",),
            tag="{*}Event",
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
            load_dtd=False,
        )
        for _, element in context:
            number += 1
            doc = _xml_event_to_doc(element)
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
            event = _accept(doc, path, stats, number)
            if event is not None:
                yield event
    except etree.XMLSyntaxError as exc:
        line = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        raise EventFileError(f"{path}:{line} not well-formed event XML ({exc.msg})") from exc
    except OSError as exc:
        raise EventFileError(f"{path}: cannot read the event XML ({exc})") from exc
    if number == 0:
        raise EventFileError(f"{path}: no <Event> element found")
