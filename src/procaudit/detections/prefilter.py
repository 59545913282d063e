"""``mp test``'s pre-filter: from an evtx record's raw JSON text, tell cheaply that no rule can match it.

Decoding a record (``json.loads``, mapping, the rules' regexes) costs several times what pyevtx-rs spends parsing
it, while almost every record of a real log matches nothing. So before decoding, the reader asks this filter;
``False`` is a promise that no rule can match the record, which is then only counted.

**What is checked.** Each rule's IR yields necessary clauses (``ir.required_clauses``): for every clause, some
field must contain one of its needles, or end with it (lower-case). Per record the filter looks:

- at the exact value of ``NewProcessName`` (the field almost every rule reads): an end-anchored needle on it
  (``endswith: '\\cmd.exe'``) is looked up by the path's last component in a dict, a needle that spans a whole
  folder (``\\Users\\Public\\``) by its components, others with ``in``. The outcome per distinct value is cached,
  since a log repeats the same few hundred programs;
- for the gate needles on other fields, in the rest of the record after System, lower-cased: it contains each of
  those values, so a needle absent from it is absent from them (an end-anchored needle is looked for as contained).

First a *gate*: one clause per rule, the cheapest to look for (path lookups cost nothing), the rarest among
equals (``ir.rarity``). When no gate is met, no rule can match. Otherwise every clause of the rules whose gate was
met is checked on the exact values of the fields it names, read from the record when first needed.

**Why it is sound.** A rule matches an ASCII event only if each of its clauses has a needle the event meets
(``ir.required_clauses``). The filter returns ``False`` only when that fails for every rule, looking at those
values or at text that contains them, given these facts about the text (pyevtx-rs's JSON of a Windows event):

- it is serde_json output: compact (no blanks), keys unique within an object and written verbatim, strings
  escaped character by character (``\\\\`` ``\\"`` ``\\n`` ``\\r`` ``\\t`` ``\\b`` ``\\f`` ``\\u00xx``; nothing else).
  So a value ``v`` containing ``x`` has an encoding containing ``encode(x)``, ``v`` ends with ``x`` exactly when
  its encoding ends with ``encode(x)``, splitting the encoding at ``\\\\`` gives the encoded path components (only
  the escaped backslash ends with a backslash), and for ASCII text lower-casing commutes with the encoding;
- the event has the event schema's shape: ``System`` (whose members have none of the EventData names) and then
  ``EventData``, a flat object of the ``Data`` values and the last member of ``Event``. So the first
  ``"NewProcessName":`` after System (preceded by ``{`` or ``,``) is the EventData key; a string value ends at the
  first ``","`` after its opening quote (inside an encoded string every ``"`` is escaped), or, for the last member,
  just before the closing ``"}}}``; a missing key means the field is absent (``None``), which no condition
  matches; and the text after System contains every EventData value.

``tests/unit/mp/test_prefilter.py`` checks both facts on every record of every sample ``.evtx`` (each record
re-encodes to exactly its text, EventData comes last) and compares the filter with decoding on samples and on
synthetic records; ``test_rules.py`` compares whole replays with and without it. Anything else - a non-ASCII
record, a process name that is not a plain string, a record that does not end as expected - is decoded.

For Sysmon event 1, the process name is ``Image``; the other fields the mapping copies verbatim or inside a larger
value (``User`` holds both halves of the account) are in the rest of the record too; clauses on fields the mapping
computes (PIDs in hex, the integrity-level SID) are left out for Sysmon records, and fields Sysmon lacks are absent.

The filter covers every rule ``mp test`` evaluates, enabled or not, since ``mp test`` reports them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from procaudit.detections import ir
from procaudit.detections.rules import CompiledRule
from procaudit.events.model import FIELDS

#: Where each 4688 field's value is in a Sysmon event 1 record, when the mapping copies it (or contains it).
SYSMON_SOURCES: dict[str, str] = {
    "NewProcessName": "Image",
    "CommandLine": "CommandLine",
    "ParentProcessName": "ParentImage",
    "SubjectUserName": "User",
    "SubjectDomainName": "User",
    "SubjectLogonId": "LogonId",
}
#: 4688 fields the Sysmon mapping computes (not verbatim): no clause on them is used for Sysmon records.
SYSMON_COMPUTED = frozenset({"NewProcessId", "ProcessId", "MandatoryLabel"})

#: The field read exactly (and cached); every other field is looked for in the rest of the record.
PROCESS = "NewProcessName"

_EVENT_DATA = '"EventData":{'
_SEPARATOR = "\\\\"  # a backslash as JSON writes it
_LINE_FEED = "\\n"  # a line feed as JSON writes it
_CACHE_SIZE = 4096
_REST_NEEDLES = 2

#: A record's raw JSON, and where in it System ends if the reader has recognised its members (else 0) -> may a
#: rule match it (``True``: decode it)?
Check = Callable[[str, int], bool]


def json_text(text: str) -> str:
    """How ``text`` looks inside a JSON string as serde_json (and Python's ``json`` module) writes it."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class _Group:
    """The needles of one clause on one value: the process name, the rest of the record, or a field read exactly."""

    key: str | None  # None: the process name; "": the rest of the record; else the field's JSON key to read
    contains: tuple[str, ...]  # the value contains one of these
    endings: tuple[str, ...]  # or ends with one of these (end-anchored needles, with and without a line feed)
    suffixes: tuple[str, ...]  # the end-anchored needles themselves, looked for as contained when inexact


@dataclass(frozen=True)
class _Plan:
    key: str | None  # the process name's JSON key ('"NewProcessName":'), or None when no rule reads it
    tails: dict[str, tuple[int, ...]]  # last component of the process name -> rules gated by it
    folders: dict[str, tuple[int, ...]]  # a whole folder name in the process name -> rules gated by it
    process_needles: tuple[tuple[str, tuple[int, ...]], ...]  # contained in the process name -> rules gated
    rest_needles: tuple[tuple[str, tuple[int, ...]], ...]  # contained in the rest of the record -> rules gated
    rules: tuple[tuple[tuple[_Group, ...], ...], ...]  # per rule: its clauses, each a tuple of needle groups


class RawPrefilter:
    """The pre-filter for a set of rules: one check per record kind (``security``, ``sysmon``).

    ``checks`` maps a kind to a function of the record's raw JSON (and where System ends, or 0) that returns
    ``True`` when the record must be decoded (some rule might match) and ``False`` when no rule can. A kind
    without a check is always decoded.
    """

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        clauses = [rule.clauses for rule in rules]
        self.checks: dict[str, Check] = {}
        security = _plan(clauses, {name: name for name in FIELDS}, frozenset())
        if security is not None:
            self.checks["security"] = _check(security)
        sysmon = _plan(clauses, SYSMON_SOURCES, SYSMON_COMPUTED)
        if sysmon is not None:
            self.checks["sysmon"] = _check(sysmon)

    def __call__(self, text: str, kind: str) -> bool:
        """``True`` when the record must be decoded."""
        check = self.checks.get(kind)
        return True if check is None else check(text, 0)


def _path_key(needle: ir.Needle) -> tuple[str, str] | None:
    """How a needle on the process name can be looked up by path component instead of searched for.

    ``("tail", name)`` when the value must end with a backslash and ``name``; ``("folder", name)`` when it must
    contain ``name`` between two backslashes (the needle's last such component); ``None`` otherwise.
    """
    if needle.field != PROCESS:
        return None
    parts = needle.text.split("\\")
    if needle.suffix and len(parts) > 1:
        return ("tail", parts[-1])
    inner = [part for part in parts[1:-1] if part]
    if inner:
        return ("folder", inner[-1])
    return None


def _cost(clause: frozenset[ir.Needle]) -> int:
    """Needles a gate clause costs to search for (path-component lookups are one dict access for all)."""
    return sum(1 for needle in clause if _path_key(needle) is None)


def _plan(per_rule: list[ir.Clauses], sources: dict[str, str], computed: frozenset[str]) -> _Plan | None:
    """Compile the rules' clauses for records whose field values sit under ``sources`` keys."""
    usable: list[list[frozenset[ir.Needle]]] = []
    for clauses in per_rule:
        # A clause with a needle on a computed field proves nothing about the raw text: leave it out. A needle on a
        # field the source lacks can never be met and is dropped (an emptied clause never holds, which is right).
        kept = [
            frozenset(needle for needle in clause if needle.field in sources)
            for clause in clauses
            if not any(needle.field in computed for needle in clause)
        ]
        if not kept:
            return None  # this rule has no cheap necessary condition: every record must be decoded
        usable.append(kept)
    tails: dict[str, list[int]] = {}
    folders: dict[str, list[int]] = {}
    process_needles: dict[str, list[int]] = {}
    rest_needles: dict[str, list[int]] = {}
    rules: list[tuple[tuple[_Group, ...], ...]] = []
    for index, kept in enumerate(usable):
        gate = max(kept, key=lambda clause: (-_cost(clause), *ir.rarity(clause)))
        for needle in gate:
            path_key = _path_key(needle)
            text = json_text(needle.text)
            if path_key is None:
                table = process_needles if needle.field == PROCESS else rest_needles
                table.setdefault(text, []).append(index)
            elif path_key[0] == "tail":
                name = json_text(path_key[1])
                for tail in (name, name + _LINE_FEED):  # "$" also matches before a final line feed
                    tails.setdefault(tail, []).append(index)
            else:
                folders.setdefault(json_text(path_key[1]), []).append(index)
        groups_of: list[tuple[_Group, ...]] = []
        for clause in kept:
            # One or two plain needles are looked for in the rest of the record (lowered once for the gate
            # already); more, or an end-anchored one, in the field's exact value, read when first needed.
            others = [needle for needle in clause if needle.field != PROCESS]
            exact = len(others) > _REST_NEEDLES or any(needle.suffix for needle in others)
            by_key: dict[str | None, list[ir.Needle]] = {}
            for needle in sorted(clause):
                where = None if needle.field == PROCESS else f'"{sources[needle.field]}":' if exact else ""
                by_key.setdefault(where, []).append(needle)
            groups_of.append(
                tuple(
                    _Group(
                        key=where,
                        contains=tuple(json_text(n.text) for n in needles if not n.suffix),
                        endings=tuple(json_text(n.text + end) for n in needles if n.suffix for end in ("", "\n")),
                        suffixes=tuple(json_text(n.text) for n in needles if n.suffix),
                    )
                    for where, needles in sorted(by_key.items(), key=lambda item: item[0] is not None)
                )
            )
        groups_of.sort(key=lambda clause: any(group.key is not None for group in clause))  # process name first
        rules.append(tuple(groups_of))
    uses_process = any(needle.field == PROCESS for kept in usable for clause in kept for needle in clause)
    return _Plan(
        key=f'"{sources[PROCESS]}":' if uses_process else None,
        tails={tail: tuple(owners) for tail, owners in tails.items()},
        folders={name: tuple(owners) for name, owners in folders.items()},
        process_needles=tuple((text, tuple(owners)) for text, owners in process_needles.items()),
        rest_needles=tuple((text, tuple(owners)) for text, owners in rest_needles.items()),
        rules=tuple(rules),
    )


def _check(plan: _Plan) -> Check:
    """The per-record function. Written for speed: it runs on every record of every file ``mp test`` reads."""
    key = plan.key
    tails = plan.tails
    folders = plan.folders
    folder_names = frozenset(folders)
    process_needles = plan.process_needles
    rest_needles = plan.rest_needles
    rules = plan.rules
    cache: dict[str, tuple[str, tuple[int, ...]]] = {}

    def process_gate(raw: str) -> tuple[str, tuple[int, ...]]:
        """The lower-cased process name and the rules its gate needles let through."""
        value = raw.lower()
        gated: set[int] = set()
        components = value.split(_SEPARATOR)
        gated.update(tails.get(components[-1], ()))
        if not folder_names.isdisjoint(components):
            for component in components:
                gated.update(folders.get(component, ()))
        for needle, owners in process_needles:
            if needle in value:
                gated.update(owners)
        return value, tuple(sorted(gated))

    empty = process_gate("")

    def value_at(text: str, key: str, start: int) -> tuple[str, bool] | None:
        """A field's raw value (as JSON writes it; the rest of the record lower-cased when inexact), and whether it is
        exactly the value; ``None`` when the record is odd.

        A missing key gives ``("", True)``: the field is absent. A value that is not a plain string gives the rest
        of the record (which contains it), marked inexact.
        """
        at = text.find(key, start)
        while at != -1 and text[at - 1] not in "{,":
            at = text.find(key, at + 1)
        if at == -1:
            return "", True
        begin = at + len(key)
        if text[begin] != '"':
            return text[start:].lower(), False
        end = text.find('","', begin)
        if end == -1:
            # EventData's last value: it ends before the closing '"}}}' of EventData, Event and the record.
            if not text.endswith('"}}}') or len(text) - 4 < begin:
                return None
            end = len(text) - 4
        return text[begin + 1 : end], True

    def check(text: str, start: int) -> bool:
        if not text.isascii():
            return True
        if start == 0:
            start = text.find(_EVENT_DATA)
            if start == -1:
                return True
        process, gated = empty
        if key is not None:
            found = value_at(text, key, start)
            if found is None or not found[1]:
                return True  # an odd record, or a process name that is not a plain string: decode
            raw = found[0]
            if raw:  # an absent process name leaves the gate of the empty name
                entry = cache.get(raw)
                if entry is None:
                    if len(cache) >= _CACHE_SIZE:
                        cache.clear()
                    entry = cache[raw] = process_gate(raw)
                process, gated = entry
        rest = ""
        if rest_needles:
            rest = text[start:].lower()
            for needle, owners in rest_needles:
                if needle in rest:
                    gated = gated + owners
        if not gated:
            return False
        if not rest:
            rest = text[start:].lower()
        values: dict[str, tuple[str, bool]] = {}
        for index in set(gated):
            for clause in rules[index]:
                for group in clause:
                    if group.key is None:
                        value, exact = process, True
                    elif not group.key:
                        value, exact = rest, False
                    else:
                        known = values.get(group.key)
                        if known is None:
                            found = value_at(text, group.key, start)
                            if found is None:
                                return True
                            known = values[group.key] = (found[0].lower(), found[1])
                        value, exact = known
                    if any(map(value.__contains__, group.contains)):
                        break
                    if exact:
                        if group.endings and value.endswith(group.endings):
                            break
                    elif any(map(value.__contains__, group.suffixes)):
                        break
                else:
                    break  # no needle of this clause is met: the rule cannot match
            else:
                return True
        return False

    return check
