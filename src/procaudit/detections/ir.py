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
from operator import attrgetter

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
    children = tuple(compile_node(child) for child in node.children)
    if isinstance(node, All):
        if len(children) == 1:
            return children[0]

        def all_of(event: ProcessCreationEvent) -> bool:
            for child in children:
                if not child(event):
                    return False
            return True

        return all_of
    if len(children) == 1:
        return children[0]

    def any_of(event: ProcessCreationEvent) -> bool:
        for child in children:
            if child(event):
                return True
        return False

    return any_of


def evaluate(node: Node, values: dict[str, str | None]) -> bool:
    """Evaluate the tree over plain field values (``None`` = field absent); the reference for tests."""
    if isinstance(node, Match):
        value = values.get(node.field)
        return value is not None and re.search(node.scom_pattern, value) is not None
    if isinstance(node, Not):
        return not evaluate(node.child, values)
    if isinstance(node, All):
        return all(evaluate(child, values) for child in node.children)
    return any(evaluate(child, values) for child in node.children)


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


def matches(node: Node) -> list[Match]:
    """Every ``Match`` leaf, in order."""
    if isinstance(node, Match):
        return [node]
    if isinstance(node, Not):
        return matches(node.child)
    return [leaf for child in node.children for leaf in matches(child)]


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

Clauses = tuple[frozenset[str], ...]

_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\/]')


def _safe(options: frozenset[str]) -> frozenset[str] | None:
    """Keep, of each option, its longest piece that JSON text shows verbatim (no quote, slash, control...)."""
    out: set[str] = set()
    for option in options:
        pieces = [p for p in _UNSAFE.split(option.lower()) if p]
        if not pieces:
            return None
        out.add(max(pieces, key=len))
    return frozenset(out)


def required_clauses(node: Node) -> Clauses:
    """Necessary conditions on an event's text: every clause must have one of its strings present.

    Strings are lower-case and free of characters JSON would escape, so they can be looked up in the raw JSON
    text of a record (lower-cased) before decoding it. An empty tuple means "no cheap condition known".
    """
    if isinstance(node, Match):
        required = scom_regex.required_substrings(scom_regex.parse(node.pattern))
        safe = _safe(required) if required else None
        return (safe,) if safe else ()
    if isinstance(node, Not):
        return ()
    if isinstance(node, All):
        return tuple(clause for child in node.children for clause in required_clauses(child))
    merged: set[str] = set()
    for child in node.children:
        clauses = required_clauses(child)
        if not clauses:
            return ()
        merged |= max(clauses, key=lambda c: min(len(s) for s in c))
    return (frozenset(merged),) if merged else ()
