"""``mp test``'s pre-filter: from an evtx record's raw JSON text, tell cheaply that no rule can match it.

Decoding a record (``json.loads``, mapping, the rules' regexes) costs several times what pyevtx-rs spends parsing
it, while almost every record of a real log matches nothing. So before decoding, the reader asks this filter;
``False`` is a promise that no rule can match the record, which is then only counted.

**What is checked.** Each rule's IR yields necessary clauses (``ir.required_clauses``): for every clause, some
field must contain one of its needles, or end with it (lower-case). The shipped rules name three fields: the
process name, the parent's name and the command line. Per record the filter reads, as raw JSON text:

- the *program fields*, ``NewProcessName`` and ``ParentProcessName`` (the parent looked for from the end, where
  it is). A log repeats the same few hundred pairs, so for each distinct pair the filter works out once what is
  left to decide: a clause that a program field meets is dropped; a rule with a clause that nothing else can meet
  is out; a rule with no clause left must be decoded. The remainder (usually a few needles on the command line) is
  cached per process, then parent;
- then the other fields it names (usually ``CommandLine``, looked for past the process name first), lower-cased.
  Each rule's remaining clauses are ordered cheapest and likeliest to fail first. When every rule's first clause
  is plain needles on the same value, one look for all of them settles most records: none there, no rule can
  match. Otherwise, or when one is there, the clauses are checked rule by rule until one rule has all its clauses
  met (decode) or every rule has failed one (skip).

**Why it is sound.** A rule matches an ASCII event only if each of its clauses has a needle the event meets
(``ir.required_clauses``). The filter returns ``False`` only when that fails for every rule, looking at those
values (or, for a value that is not a plain string or a Sysmon field that only contains the 4688 value, at text
that contains it), given these facts about the text (pyevtx-rs's JSON of a Windows event):

- it is serde_json output: compact (no blanks), keys unique within an object and written verbatim, strings
  escaped character by character (``\\\\`` ``\\"`` ``\\n`` ``\\r`` ``\\t`` ``\\b`` ``\\f`` ``\\u00xx``; nothing else).
  So a value ``v`` containing ``x`` has an encoding containing ``encode(x)``, ``v`` ends with ``x`` exactly when
  its encoding ends with ``encode(x)``, and for ASCII text lower-casing commutes with the encoding;
- the event has the event schema's shape: ``System`` (whose members have none of the EventData names) and then
  ``EventData``, a flat object of the ``Data`` values and the last member of ``Event``. So any ``"Name":`` after
  System is EventData's key (inside an encoded string every ``"`` is escaped, so no key can be spelled there),
  wherever the search for it starts and in whichever direction; a string value ends at the first ``","`` after its
  opening quote, or, for the last member, just before the closing ``"}}}``; a missing key means the field is
  absent (``None``), which no condition matches; and the text after System contains every EventData value.

``tests/unit/mp/test_prefilter.py`` checks both facts on every record of every sample ``.evtx`` (each record
re-encodes to exactly its text, EventData comes last) and compares the filter with decoding on samples and on
synthetic records; ``test_rules.py`` compares whole replays with and without it. Anything else - a non-ASCII
record, a program field that is not a plain string, a record that does not end as expected - is decoded.

For Sysmon event 1, the process name is ``Image`` and the parent's ``ParentImage``; ``User`` holds both halves of
the account, so needles on them are only looked for as contained; clauses on fields the mapping computes (PIDs in
hex, the integrity-level SID) are left out for Sysmon records, and fields Sysmon lacks are absent.

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
#: Sysmon fields that hold the 4688 value inside a larger one: its needles are only looked for as contained.
SYSMON_CONTAINING = frozenset({"SubjectUserName", "SubjectDomainName"})
#: 4688 fields the Sysmon mapping computes (not verbatim): no clause on them is used for Sysmon records.
SYSMON_COMPUTED = frozenset({"NewProcessId", "ProcessId", "MandatoryLabel"})

#: The program fields: few distinct values per log, so what is left to decide is cached per pair of them.
PROGRAM_FIELDS = ("NewProcessName", "ParentProcessName")

_EVENT_DATA = '"EventData":{'
_CACHE_SIZE = 4096

#: A record's raw JSON, and where in it System ends if the reader has recognised its members (else 0) -> may a
#: rule match it (``True``: decode it)?
Check = Callable[[str, int], bool]

#: One clause's needles on one value: (index of the value, contained, endings, end-anchored needles themselves).
#: A value is exact or not (only contains it); on an inexact value an end-anchored needle is looked for as contained.
_Test = tuple[int, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def json_text(text: str) -> str:
    """How ``text`` looks inside a JSON string as serde_json (and Python's ``json`` module) writes it."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class _Needles:
    """A clause's needles on one field, as they look in JSON text."""

    field: str
    contains: tuple[str, ...]  # the value contains one of these
    endings: tuple[str, ...]  # or ends with one of these (end-anchored needles, with and without a line feed)
    suffixes: tuple[str, ...]  # the end-anchored needles themselves, looked for as contained when inexact

    def met(self, value: str, exact: bool) -> bool:
        if any(map(value.__contains__, self.contains)):
            return True
        if exact:
            return bool(self.endings) and value.endswith(self.endings)
        return any(map(value.__contains__, self.suffixes))


def _needles(field: str, needles: list[ir.Needle]) -> _Needles:
    return _Needles(
        field=field,
        contains=tuple(json_text(n.text) for n in needles if not n.suffix),
        endings=tuple(json_text(n.text + end) for n in needles if n.suffix for end in ("", "\n")),
        suffixes=tuple(json_text(n.text) for n in needles if n.suffix),
    )


class RawPrefilter:
    """The pre-filter for a set of rules: one check per record kind (``security``, ``sysmon``).

    ``checks`` maps a kind to a function of the record's raw JSON (and where System ends, or 0) that returns
    ``True`` when the record must be decoded (some rule might match) and ``False`` when no rule can. A kind
    without a check is always decoded.
    """

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        clauses = [rule.clauses for rule in rules]
        self.checks: dict[str, Check] = {}
        security = _rule_needles(clauses, frozenset(FIELDS), frozenset())
        if security is not None:
            self.checks["security"] = _check(security, {name: name for name in FIELDS}, frozenset())
        sysmon = _rule_needles(clauses, frozenset(SYSMON_SOURCES), SYSMON_COMPUTED)
        if sysmon is not None:
            self.checks["sysmon"] = _check(sysmon, SYSMON_SOURCES, SYSMON_CONTAINING)

    def __call__(self, text: str, kind: str) -> bool:
        """``True`` when the record must be decoded."""
        check = self.checks.get(kind)
        return True if check is None else check(text, 0)


def _rule_needles(
    per_rule: list[ir.Clauses], present: frozenset[str], computed: frozenset[str]
) -> list[list[tuple[_Needles, ...]]] | None:
    """Each rule's clauses as needles grouped by field, for records that have the ``present`` fields.

    ``None`` when some rule has no usable clause: then every record must be decoded.
    """
    rules: list[list[tuple[_Needles, ...]]] = []
    for clauses in per_rule:
        # A clause with a needle on a computed field proves nothing about the raw text: leave it out. A needle on a
        # field the source lacks can never be met and is dropped (an emptied clause never holds, which is right).
        kept: list[tuple[_Needles, ...]] = []
        for clause in clauses:
            if any(needle.field in computed for needle in clause):
                continue
            by_field: dict[str, list[ir.Needle]] = {}
            for needle in sorted(clause):
                if needle.field in present:
                    by_field.setdefault(needle.field, []).append(needle)
            kept.append(tuple(_needles(field, needles) for field, needles in sorted(by_field.items())))
        if not kept:
            return None
        rules.append(kept)
    return rules


#: Needles shorter than this occur often enough in command lines to be weak evidence that a clause fails.
_SHORT = 5


def _cost(tests: list[_Test]) -> tuple[bool, bool, int, int]:
    """How a clause ranks for checking first (lower first): one plain test (the rejecting look can use it), no short
    needle (likely to fail), few needles (cheap), then long ones."""
    needles = [needle for test in tests for needle in (*test[1], *test[3])]
    shortest = min(map(len, needles), default=0)
    plain = len(tests) == 1 and not tests[0][2] and not tests[0][3]
    return (not plain, shortest < _SHORT, len(needles), -shortest)


def _value_at(text: str, key: str, start: int) -> tuple[str, bool] | None:
    """A field's raw value after ``start`` (as JSON writes it), and whether it is exactly the value; ``None`` when
    the record is odd.

    ``key`` is ``'"Name":'``: any occurrence of it after System is EventData's key, since inside an encoded string
    the quotes are escaped. A missing key gives ``("", True)``: the field is absent. A value that is not a plain
    string gives the rest of the record (which contains it), marked inexact.
    """
    at = text.find(key, start)
    if at == -1:
        return "", True
    begin = at + len(key)
    if text[begin : begin + 1] != '"':
        return text[start:], False
    end = text.find('","', begin)
    if end == -1:
        # EventData's last value: it ends before the closing '"}}}' of EventData, Event and the record.
        if not text.endswith('"}}}') or len(text) - 4 < begin:
            return None
        end = len(text) - 4
    return text[begin + 1 : end], True


@dataclass(frozen=True, slots=True)
class _Left:
    """What is left to decide for one pair of program values."""

    keys: tuple[tuple[str, int], ...]  # the JSON keys of the other values to read (tests index them), with lengths
    rules: tuple[
        tuple[tuple[_Test, ...], ...], ...
    ]  # per rule that may still match: its clauses, likeliest to fail first
    # When every rule's first clause is plain needles on the same value (then read first): all those needles. None
    # of them in it means no rule can match.
    reject: tuple[str, ...]


def _check(rules: list[list[tuple[_Needles, ...]]], sources: dict[str, str], containing: frozenset[str]) -> Check:
    """The per-record function. Written for speed: it runs on every record of every file ``mp test`` reads, and in
    CPython each method call with arguments costs about as much as scanning a few hundred characters."""
    used = {needles.field for clauses in rules for clause in clauses for needles in clause}
    # The program fields' JSON keys ("" when no rule reads the field: it stays "").
    process_key, parent_key = (f'"{sources[field]}":' if field in used else "" for field in PROGRAM_FIELDS)
    process_quote, parent_quote = len(process_key), len(parent_key)  # where a string value's opening quote is
    cache: dict[str, dict[str, _Left | bool]] = {}  # process name -> parent name -> what is left

    def left_for(process: str, parent: str) -> _Left | bool:
        """What is left to decide once the program fields hold these values (raw JSON text, exact; "" if absent)."""
        lowered = {"NewProcessName": process.lower(), "ParentProcessName": parent.lower()}
        keys: list[str] = []
        left: list[tuple[tuple[_Test, ...], ...]] = []
        for clauses in rules:
            remaining: list[tuple[tuple[bool, bool, int, int], tuple[_Test, ...]]] = []
            for clause in clauses:
                if any(needles.met(lowered[needles.field], True) for needles in clause if needles.field in lowered):
                    continue
                tests: list[_Test] = []
                for needles in clause:
                    if needles.field in lowered:
                        continue
                    key = f'"{sources[needles.field]}":'
                    if key not in keys:
                        keys.append(key)
                    # A value that only contains the field's value: its endings prove nothing, look for them inside.
                    inside = needles.field in containing
                    tests.append(
                        (
                            keys.index(key),
                            needles.contains + (needles.suffixes if inside else ()),
                            () if inside else needles.endings,
                            needles.suffixes,
                        )
                    )
                if not tests:
                    break  # this clause cannot be met: the rule cannot match
                remaining.append((_cost(tests), tuple(tests)))
            else:
                if not remaining:
                    return True  # the program fields alone meet every clause of this rule
                remaining.sort(key=lambda item: item[0])  # cheapest and likeliest to fail first
                left.append(tuple(tests for _, tests in remaining))
        if not left:
            return False
        firsts = [clauses[0] for clauses in left]
        plain = all(len(tests) == 1 and not tests[0][2] and not tests[0][3] for tests in firsts)
        indexes = {tests[0][0] for tests in firsts}
        reject: tuple[str, ...] = ()
        if plain and len(indexes) == 1:
            reject = tuple(dict.fromkeys(needle for tests in firsts for needle in tests[0][1]))
            # Read that value first: swap its key to the front, and the tests' indexes with it.
            first = indexes.pop()
            order = [first, *(i for i in range(len(keys)) if i != first)]
            moved = {old: new for new, old in enumerate(order)}
            keys = [keys[i] for i in order]
            left = [
                tuple(tuple((moved[t[0]], t[1], t[2], t[3]) for t in tests) for tests in clauses) for clauses in left
            ]
        return _Left(tuple((key, len(key)) for key in keys), tuple(left), reject)

    def general(text: str, key: str, start: int) -> str | None:
        """A program field's exact value read the general way; ``None`` when it is not a plain string."""
        found = _value_at(text, key, start)
        return None if found is None or not found[1] else found[0]

    def check(text: str, start: int) -> bool:
        if not text.isascii():
            return True
        if start == 0:
            start = text.find(_EVENT_DATA)
            if start == -1:
                return True
        # Values are read inline the usual way (a plain string, not EventData's last member), else the general way.
        # A key is never the text's last character in JSON; should it be, the IndexError means: decode.
        try:
            process = parent = ""
            hint = start  # where the other fields are looked for first: past the process name, which they follow
            if process_key and (at := text.find(process_key, start)) != -1:
                at += process_quote
                if text[at] == '"' and (end := text.find('","', at)) != -1:
                    process = text[at + 1 : end]
                    hint = end
                elif (found := general(text, process_key, start)) is not None:
                    process = found
                else:
                    return True
            # The parent comes last but one in 4688's EventData: look from the end.
            if parent_key and (at := text.rfind(parent_key, start)) != -1:
                at += parent_quote
                if text[at] == '"' and (end := text.find('","', at)) != -1:
                    parent = text[at + 1 : end]
                elif (found := general(text, parent_key, start)) is not None:
                    parent = found
                else:
                    return True
            by_parent = cache.get(process)
            if by_parent is None:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                by_parent = cache[process] = {}
            left = by_parent.get(parent)
            if left is None:
                if len(by_parent) >= _CACHE_SIZE:
                    by_parent.clear()
                left = by_parent[parent] = left_for(process, parent)
            if left is True or left is False:
                return left
            read: list[tuple[str, bool]] = []
            reject = left.reject
            for key, quote in left.keys:
                at = text.find(key, hint)
                if at == -1 and (hint == start or (at := text.find(key, start, hint)) == -1):
                    value, exact = "", True
                elif text[at + quote] == '"' and (end := text.find('","', at + quote)) != -1:
                    value, exact = text[at + quote + 1 : end].lower(), True
                elif (raw := _value_at(text, key, start)) is not None:
                    value, exact = raw[0].lower(), raw[1]
                else:
                    return True
                if reject:  # the first value read is the one the rejecting needles are looked for in
                    for needle in reject:
                        if needle in value:
                            break
                    else:
                        return False
                    reject = ()
                read.append((value, exact))
        except IndexError:
            return True
        for clauses in left.rules:
            for tests in clauses:
                for index, contains, endings, suffixes in tests:
                    value, exact = read[index]
                    if any(map(value.__contains__, contains)):
                        break
                    if exact:
                        if endings and value.endswith(endings):
                            break
                    elif any(map(value.__contains__, suffixes)):
                        break
                else:
                    break  # no needle of this clause is met: the rule cannot match
            else:
                return True
        return False

    return check
