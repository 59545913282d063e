"""``mp test``'s pre-filter: from an evtx record's raw JSON text, tell cheaply that no rule can match it.

Decoding a record (``json.loads``, mapping, the rules' regexes) costs several times what pyevtx-rs spends parsing
it, while almost every record of a real log matches nothing. So before decoding, the reader asks this filter;
``False`` is a promise that no rule can match the record, which is then only counted.

**What is checked.** Each rule's IR yields necessary clauses (``ir.required_clauses``): for every clause, some
field must contain one of its needles, or end with it (lower-case). Per record, the filter finds the raw values of
the few fields the rules read (``NewProcessName``, ``CommandLine``, ``ParentProcessName`` for the shipped rules)
and looks there, lower-cased:

1. a *gate*: one clause per rule, the rarest (``ir.rarest``). An end-anchored needle on a path (``endswith:
   '\\cmd.exe'``) is looked up by the value's last path component in a dict; the others with ``in``. When no gate
   needle is met, no rule can match;
2. for the rules whose gate was met, all their clauses.

**Why it is sound.** A rule matches an ASCII event only if each of its clauses has a needle the event meets
(``ir.required_clauses``). The filter returns ``False`` only when that fails for every rule, looking at exactly
those values, given these facts about the text (pyevtx-rs's JSON of a Windows event):

- it is serde_json output: compact (no blanks), keys unique within an object and written verbatim, strings
  escaped character by character (``\\\\`` ``\\"`` ``\\n`` ``\\r`` ``\\t`` ``\\b`` ``\\f`` ``\\u00xx``; nothing else).
  So a value ``v`` containing ``x`` has an encoding containing ``encode(x)``, ``v`` ends with ``x`` exactly when
  its encoding ends with ``encode(x)``, and for ASCII text lower-casing commutes with the encoding;
- the event has the event schema's shape: ``System`` (whose members have none of the EventData names) and then
  ``EventData``, a flat object of the ``Data`` values and the last member of ``Event``. So a key found after
  ``"EventData":{``, or after the System members the reader already recognised (preceded by ``{`` or ``,``), is
  an EventData key; a string value ends at the first ``","`` after its opening quote (inside an encoded
  string every ``"`` is escaped), or, for the last member, just before the closing ``"}}}``; a missing key means
  the field is absent (``None``), which no condition matches.

``tests/unit/mp/test_prefilter.py`` checks both facts on every record of every sample ``.evtx`` (each record
re-encodes to exactly its text, and the values found here are the decoded ones) and compares replays with and
without the filter. Anything else - a non-ASCII record, a value that is not a plain string, a record that does not
end as expected - is decoded.

For Sysmon event 1, values come from the Sysmon names the mapping copies verbatim (``Image``, ``CommandLine``,
``ParentImage``; ``User`` holds both halves of the account, so needles on those are only looked up inside it;
``LogonId``); clauses on fields the mapping computes (PIDs in hex, the integrity-level SID) are left out for Sysmon
records, and fields Sysmon lacks are absent.

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
#: Sysmon fields that hold more than the 4688 field (``User`` = ``DOMAIN\\name``): only "contains" is known.
SYSMON_PARTIAL = frozenset({"SubjectUserName", "SubjectDomainName"})
#: 4688 fields the Sysmon mapping computes (not verbatim): no clause on them is used for Sysmon records.
SYSMON_COMPUTED = frozenset({"NewProcessId", "ProcessId", "MandatoryLabel"})

#: Fields that hold a file path, where a needle can be looked up by path component.
PATH_FIELDS = frozenset({"NewProcessName", "ParentProcessName"})

_EVENT_DATA = '"EventData":{'
_SEPARATOR = "\\\\"  # a backslash as JSON writes it
_LINE_FEED = "\\n"  # a line feed as JSON writes it

#: A record's raw JSON, and where in it the EventData search may start (0, or past the System members the reader
#: has already recognised) -> may a rule match it (``True``: decode it)?
Check = Callable[[str, int], bool]


def json_text(text: str) -> str:
    """How ``text`` looks inside a JSON string as serde_json (and Python's ``json`` module) writes it."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class _Test:
    """One needle as stage 2 runs it: ``slot``'s value contains ``text``, or ends with one of ``endings``."""

    slot: int
    text: str
    endings: tuple[str, ...] | None


@dataclass(frozen=True)
class _Plan:
    keys: tuple[str, ...]  # per slot: the JSON key, '"NewProcessName":'
    tails: tuple[dict[str, tuple[int, ...]], ...]  # per slot: last path component -> rules gated by it
    folders: tuple[dict[str, tuple[int, ...]], ...]  # per slot: a whole inner path component -> rules gated
    needles: tuple[tuple[tuple[str, tuple[int, ...]], ...], ...]  # per slot: (needle, rules gated by it)
    rules: tuple[tuple[tuple[_Test, ...], ...], ...]  # per rule: clauses, each a tuple of tests


def _path_key(needle: ir.Needle) -> tuple[str, str] | None:
    """How a needle can be looked up by path component instead of searched for.

    ``("tail", name)`` when the value must end with a backslash and ``name``; ``("folder", name)`` when it must
    contain ``name`` between two backslashes (the needle's last such component); ``None`` otherwise.
    """
    if needle.field not in PATH_FIELDS:
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


class RawPrefilter:
    """The pre-filter for a set of rules: one check per record kind (``security``, ``sysmon``).

    ``checks`` maps a kind to a function of the record's raw JSON that returns ``True`` when the record must be
    decoded (some rule might match) and ``False`` when no rule can. A kind without a check is always decoded.
    """

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        clauses = [rule.clauses for rule in rules]
        self.checks: dict[str, Check] = {}
        security = _plan(clauses, {name: name for name in FIELDS}, frozenset(), frozenset())
        if security is not None:
            self.checks["security"] = _check(security)
        sysmon = _plan(clauses, SYSMON_SOURCES, SYSMON_PARTIAL, SYSMON_COMPUTED)
        if sysmon is not None:
            self.checks["sysmon"] = _check(sysmon)

    def __call__(self, text: str, kind: str) -> bool:
        """``True`` when the record must be decoded."""
        check = self.checks.get(kind)
        return True if check is None else check(text, 0)


def _plan(
    per_rule: list[ir.Clauses], sources: dict[str, str], partial: frozenset[str], computed: frozenset[str]
) -> _Plan | None:
    """Compile the rules' clauses for records whose field values sit under ``sources`` keys."""
    usable: list[list[frozenset[ir.Needle]]] = []
    for clauses in per_rule:
        # A clause with a needle on a computed field proves nothing about the raw text: leave it out. A needle on a
        # field the source lacks can never be met and is dropped (an emptied clause never holds, which is right).
        kept = [
            frozenset(
                needle._replace(suffix=needle.suffix and needle.field not in partial)
                for needle in clause
                if needle.field in sources
            )
            for clause in clauses
            if not any(needle.field in computed for needle in clause)
        ]
        if not kept:
            return None  # this rule has no cheap necessary condition: every record must be decoded
        usable.append(kept)
    keys: list[str] = []
    slot_of: dict[str, int] = {}
    used = {needle.field for clauses in usable for clause in clauses for needle in clause}
    for field in FIELDS:
        if field in used:
            key = f'"{sources[field]}":'
            if key not in keys:
                keys.append(key)
            slot_of[field] = keys.index(key)
    tails: list[dict[str, list[int]]] = [{} for _ in keys]
    folders: list[dict[str, list[int]]] = [{} for _ in keys]
    needles: list[dict[str, list[int]]] = [{} for _ in keys]
    rules: list[tuple[tuple[_Test, ...], ...]] = []
    for index, kept in enumerate(usable):
        # The gate: a clause every record is checked against, so the cheapest; among equally cheap ones the rarest.
        gate = max(kept, key=lambda clause: (-_cost(clause), *ir.rarity(clause)))
        for needle in gate:
            slot = slot_of[needle.field]
            path_key = _path_key(needle)
            if path_key is None:
                needles[slot].setdefault(json_text(needle.text), []).append(index)
            elif path_key[0] == "tail":
                name = json_text(path_key[1])
                for tail in (name, name + _LINE_FEED):  # "$" also matches before a final line feed
                    tails[slot].setdefault(tail, []).append(index)
            else:
                folders[slot].setdefault(json_text(path_key[1]), []).append(index)
        tests = [
            tuple(
                _Test(
                    slot_of[needle.field],
                    json_text(needle.text),
                    (json_text(needle.text), json_text(needle.text + "\n")) if needle.suffix else None,
                )
                for needle in sorted(clause)
            )
            for clause in kept
        ]
        tests.sort(key=lambda clause: max((test.slot for test in clause), default=-1))  # short fields first
        rules.append(tuple(tests))
    return _Plan(
        keys=tuple(keys),
        tails=tuple({tail: tuple(owners) for tail, owners in table.items()} for table in tails),
        folders=tuple({name: tuple(owners) for name, owners in table.items()} for table in folders),
        needles=tuple(tuple((text, tuple(owners)) for text, owners in table.items()) for table in needles),
        rules=tuple(rules),
    )


def _check(plan: _Plan) -> Check:
    """The per-record function. Written for speed: it runs on every record of every file ``mp test`` reads."""
    slots = tuple(
        (key, tails, folders, frozenset(folders), needles)
        for key, tails, folders, needles in zip(plan.keys, plan.tails, plan.folders, plan.needles, strict=True)
    )
    rules = plan.rules

    def check(text: str, start: int) -> bool:
        if not text.isascii():
            return True
        if start == 0:
            start = text.find(_EVENT_DATA)
            if start == -1:
                return True
        values: list[str] = []
        gated: set[int] = set()
        position = start
        for key, tails, folders, folder_names, needles in slots:
            # Keys come in EventData order: look after the previous value first, then before it.
            at = text.find(key, position)
            if at == -1 and position != start:
                at = text.find(key, start, position)
            if at == -1:
                values.append("")  # no such key: the field is absent
                continue
            begin = at + len(key)
            if text[at - 1] not in "{," or text[begin] != '"':
                return True  # not a plain EventData string: decode
            end = text.find('","', begin)
            if end == -1:
                # EventData's last value: it ends before the closing '"}}}' of EventData, Event and the record.
                if not text.endswith('"}}}') or len(text) - 4 < begin:
                    return True
                end = len(text) - 4
            value = text[begin + 1 : end].lower()
            values.append(value)
            position = end
            if tails or folders:
                # Split where JSON has an escaped backslash: the pieces are the path's components as JSON writes
                # them (the split follows the escape sequences, since only "\\\\" ends with a backslash).
                components = value.split(_SEPARATOR)
                owners = tails.get(components[-1])
                if owners:
                    gated.update(owners)
                if not folder_names.isdisjoint(components):
                    for component in components:
                        owners = folders.get(component)
                        if owners:
                            gated.update(owners)
            for needle, owners in needles:
                if needle in value:
                    gated.update(owners)
        for index in gated:
            for clause in rules[index]:
                for test in clause:
                    value = values[test.slot]
                    if value.endswith(test.endings) if test.endings else test.text in value:
                        break
                else:
                    break  # no test of this clause holds: the rule cannot match
            else:
                return True
        return False

    return check
