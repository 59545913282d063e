"""The one condition language both ``mp test`` and the SCOM compiler use.

A rule's conditions compile to this small tree:

- ``Match(field, pattern, ignore_case)``: the 4688 field matches ``pattern`` (a search, not a full match),
  where ``pattern`` is in SCOM's documented regex subset (``scom_regex``). It becomes a SCOM
  ``RegExExpression`` with ``MatchesRegularExpression`` on ``Params/Param[N]``, the pattern prefixed with ``(?i)``
  when ``ignore_case`` is set. A field the event does not carry never matches.
- ``All`` / ``AnyOf`` / ``Not``: SCOM's ``And`` / ``Or`` / ``Not``.

Every rule operator (equals, contains, startswith, endswith, regex, not-contains, exists) becomes a ``Match``
(negated with ``Not`` when needed): there is no second string-matching path whose case or escaping rules could
differ from the regex SCOM runs. The Python matcher here runs the very pattern string the MP carries.

Semantics worth knowing (identical in .NET and Python): ``$`` also matches before one final line feed, so
``endswith: x`` matches ``"...x\\n"``; ``.`` never matches a line feed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import product
from math import prod
from operator import attrgetter
from typing import NamedTuple

from procaudit.detections import scom_regex
from procaudit.events.model import FIELD_MIN_VERSION, ProcessCreationEvent


@dataclass(frozen=True, slots=True)
class Match:
    """``field`` matches ``pattern`` (regex subset, without the ``(?i)`` prefix)."""

    field: str
    pattern: str
    ignore_case: bool = True

    @property
    def scom_pattern(self) -> str:
        """The pattern exactly as it goes into the MP and into Python's ``re``."""
        return ("(?i)" if self.ignore_case else "") + self.pattern


@dataclass(frozen=True, slots=True)
class All:
    """Every child holds (SCOM ``And``)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one child holds (SCOM ``Or``)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not hold (SCOM ``Not``)."""

    child: Node


Node = Match | All | AnyOf | Not

#: Constant results of the version analysis.
_TRUE = All(())
_FALSE = AnyOf(())


# --- Python matcher -----------------------------------------------------------------------------------------

Predicate = Callable[[ProcessCreationEvent], bool]


def compile_node(node: Node) -> Predicate:
    """Compile the tree into a predicate over events, running the same patterns SCOM runs."""
    if isinstance(node, Match):
        search = re.compile(node.scom_pattern).search
        get = attrgetter(node.field)

        def match(event: ProcessCreationEvent) -> bool:
            value = get(event)
            return value is not None and search(value) is not None

        return match
    if isinstance(node, Not):
        inner = compile_node(node.child)
        return lambda event: not inner(event)
    children = [compile_node(child) for child in node.children]
    if not children:
        constant = isinstance(node, All)  # an empty And holds, an empty Or does not
        return lambda _event: constant
    # A right fold of two-argument closures: short-circuits like SCOM's And / Or, without a loop per event.
    combine = _both if isinstance(node, All) else _either
    predicate = children[-1]
    for child in reversed(children[:-1]):
        predicate = combine(child, predicate)
    return predicate


def _both(first: Predicate, rest: Predicate) -> Predicate:
    return lambda event: first(event) and rest(event)


def _either(first: Predicate, rest: Predicate) -> Predicate:
    return lambda event: first(event) or rest(event)


# --- analysis -------------------------------------------------------------------------------------------------


def fields_used(node: Node) -> set[str]:
    """Every 4688 field the tree reads."""
    if isinstance(node, Match):
        return {node.field}
    if isinstance(node, Not):
        return fields_used(node.child)
    out: set[str] = set()
    for child in node.children:
        out |= fields_used(child)
    return out


def without_fields(node: Node, absent: frozenset[str]) -> Node:
    """The tree as it evaluates when ``absent`` fields are missing from the event, simplified.

    A ``Match`` on a missing field is false, so e.g. ``Not(Match(ParentProcessName, ...))`` becomes true.
    The result is ``AnyOf(())`` (always false) when no event lacking those fields can ever match.
    """
    if isinstance(node, Match):
        return _FALSE if node.field in absent else node
    if isinstance(node, Not):
        inner = without_fields(node.child, absent)
        if inner == _FALSE:
            return _TRUE
        if inner == _TRUE:
            return _FALSE
        return Not(inner)
    kids = [without_fields(child, absent) for child in node.children]
    if isinstance(node, All):
        if _FALSE in kids:
            return _FALSE
        kept = tuple(k for k in kids if k != _TRUE)
        return kept[0] if len(kept) == 1 else All(kept)
    if _TRUE in kids:
        return _TRUE
    kept = tuple(k for k in kids if k != _FALSE)
    return kept[0] if len(kept) == 1 else AnyOf(kept)


def never_matches(node: Node, absent: frozenset[str]) -> bool:
    """True when no event that lacks the ``absent`` fields can match."""
    return without_fields(node, absent) == _FALSE


def fields_newer_than(version: int) -> frozenset[str]:
    """Fields an event of ``version`` does not carry."""
    return frozenset(name for name, first in FIELD_MIN_VERSION.items() if first > version)


# --- pre-filter literals --------------------------------------------------------------------------------------


class Needle(NamedTuple):
    """One way a clause can be met: the 4688 field's value, lower-cased, contains ``text`` - or, when ``suffix`` is
    set, ends with ``text`` or with ``text`` and one line feed (which also means it contains ``text``)."""

    field: str
    text: str
    suffix: bool = False


#: Necessary conditions for a match: every clause has a needle that the event meets. Only claimed for events whose
#: values are ASCII (anything else is never pre-filtered). An empty clause can never be met; an empty tuple means
#: that no cheap condition is known.
Clauses = tuple[frozenset[Needle], ...]

_MAX_NEEDLES = 16
_MAX_CLAUSES = 16
_ASCII = tuple(chr(code) for code in range(128))


@cache
def _ascii_twins(char: str, ignore_case: bool) -> frozenset[str]:
    """The ASCII characters (lower-cased) that the pattern character ``char`` matches, as ``re`` decides it.

    Python's ``re`` folds a few non-ASCII letters onto ASCII ones under IGNORECASE (the Kelvin sign matches
    ``k``), so this asks the engine itself instead of assuming that a non-ASCII character never matches ASCII.
    """
    if char.isascii():
        return frozenset({char.lower()})
    pattern = re.compile(re.escape(char), re.IGNORECASE if ignore_case else 0)
    return frozenset(ascii_char.lower() for ascii_char in _ASCII if pattern.fullmatch(ascii_char))


def _ascii_forms(options: frozenset[str], ignore_case: bool) -> frozenset[str] | None:
    """What the options can look like inside lower-cased ASCII text; ``None`` when that is too many strings.

    An option with a character that matches no ASCII character cannot occur in ASCII text and contributes nothing.
    """
    found: set[str] = set()
    for option in options:
        variants = {""}
        for char in option:
            twins = _ascii_twins(char, ignore_case)
            variants = {head + twin for head in variants for twin in twins}
            if len(variants) > _MAX_NEEDLES:
                return None
        found |= variants
        if len(found) > _MAX_NEEDLES:
            return None
    return frozenset(found)


def _minimal(needles: set[Needle]) -> frozenset[Needle]:
    """Drop needles implied by another: if ``other`` (a plain contains needle on the same field) is inside
    ``needle``'s text, meeting ``needle`` means meeting ``other``."""
    return frozenset(
        n
        for n in needles
        if not any(o != n and o.field == n.field and not o.suffix and o.text in n.text for o in needles)
    )


def _match_clause(node: Match) -> frozenset[Needle] | None:
    parsed = scom_regex.parse(node.pattern)
    suffixes = scom_regex.required_suffixes(parsed)
    if suffixes:
        forms = _ascii_forms(suffixes, node.ignore_case)
        if forms is not None:
            return _minimal({Needle(node.field, text, suffix=True) for text in forms})
    options = scom_regex.required_substrings(parsed)
    if not options:
        return None
    forms = _ascii_forms(options, node.ignore_case)
    if forms is None:
        return None
    return _minimal({Needle(node.field, text) for text in forms})


def rarity(clause: frozenset[Needle]) -> tuple[int, int]:
    """How selective a clause is likely to be: its shortest needle's length (longer strings occur less often),
    then fewer needles. Only a proxy: no word frequencies are known here."""
    return (min((len(n.text) for n in clause), default=1_000_000), -len(clause))


def rarest(clauses: Clauses) -> frozenset[Needle]:
    """The clause most likely to fail on an ordinary event."""
    return max(clauses, key=rarity)


def required_clauses(node: Node) -> Clauses:
    """Necessary conditions on an event's field values, for a cheap look at an event before decoding it.

    Sound for events whose values are ASCII: if the tree matches such an event, every clause has a needle the
    event meets (see ``Needle``). ``Not`` yields nothing (a negation requires no text); ``All`` keeps every child's
    clauses; ``AnyOf`` distributes: (A1 and A2) or (B1 and B2) needs A1|B1, A1|B2, A2|B1 and A2|B2, so it yields
    every union of one clause per child while there are at most ``_MAX_CLAUSES`` of them, else the union of each
    child's rarest clause.
    """
    if isinstance(node, Match):
        clause = _match_clause(node)
        return (clause,) if clause is not None else ()
    if isinstance(node, Not):
        return ()
    if isinstance(node, All):
        out: list[frozenset[Needle]] = []
        for child in node.children:
            for clause in required_clauses(child):
                if clause not in out:
                    out.append(clause)
        return tuple(out)
    if not node.children:
        return ()
    per_child = [required_clauses(child) for child in node.children]
    if not all(per_child):
        return ()
    if prod(len(clauses) for clauses in per_child) <= _MAX_CLAUSES:
        out = []
        for combination in product(*per_child):
            clause = _minimal(set().union(*combination))
            if clause not in out:
                out.append(clause)
        return tuple(out)
    return (_minimal(set().union(*(rarest(clauses) for clauses in per_child))),)
