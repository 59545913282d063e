"""The regular-expression dialect a SCOM expression filter is documented to support, and nothing more.

KB2702651 lists the constructs the expression-filter module supports: ``. [ ] [^ ] ^ $ | ( ) ? * + {n} {n,}
{,n} {n,m} \\n \\t``, with inline ``(?i)`` in its examples. The engine is .NET's ``Regex``. We accept the
intersection that .NET and Python's ``re`` read the same way, so the Python matcher used by ``mp test`` and
the pattern SCOM runs agree:

- literals, and ``\\`` before any ASCII punctuation (an escaped literal); ``\\n``, ``\\t``;
- ``.``, ``^``, ``$``, ``|``, capturing ``( )``;
- classes ``[...]`` / ``[^...]`` with single characters, ranges ``a-z`` and the escapes above;
- greedy ``? * +`` and ``{n}``, ``{n,}``, ``{n,m}``.

Rejected, each with a hint: ``{,n}`` (Python reads it as ``{0,n}``, .NET as literal text), lazy or possessive
quantifiers, ``(?...)`` groups (case is the rule's ``case_sensitive`` setting, and the compiler adds the one
``(?i)`` prefix itself), ``\\d \\w \\s \\b`` and other letter escapes, back-references, ``[`` inside a class
(.NET class subtraction, Python set operations), a bare ``{`` or ``]``.

Known divergence kept on purpose: with ``(?i)``, Python also folds four non-ASCII letters onto ASCII ones
(U+0131 dotless i, U+0130 capital I with dot, U+017F long s and U+212A Kelvin sign); .NET folds by culture.
Windows paths and switches are ASCII.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_ESCAPE_OUTSIDE = frozenset("\\.^$|?*+()[]{}")
_ESCAPE_INSIDE = frozenset("\\]^-[")
_LETTER_HINTS = {
    "d": "write [0-9]",
    "D": "write [^0-9]",
    "w": "write [A-Za-z0-9_]",
    "W": "write [^A-Za-z0-9_]",
    "s": "write [ \\t] (or list the white-space characters you mean)",
    "S": "write [^ \\t]",
    "b": "there is no word boundary in the subset; match the delimiter characters instead",
    "B": "there is no word boundary in the subset",
    "A": "write ^",
    "z": "write $",
    "Z": "write $",
    "r": "a carriage return is not in the documented subset",
    "x": "write the character itself",
    "u": "write the character itself",
}


class RegexSubsetError(ValueError):
    """A pattern uses something outside SCOM's documented regex subset."""

    def __init__(self, pattern: str, position: int, message: str) -> None:
        super().__init__(f"{message} (at position {position} of {pattern!r})")
        self.pattern = pattern
        self.position = position
        self.message = message


# --- AST ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    """One literal character."""

    char: str


@dataclass(frozen=True, slots=True)
class Dot:
    """``.``: any character but a line feed."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """``^`` or ``$``."""

    kind: str


@dataclass(frozen=True, slots=True)
class CharClass:
    """``[...]``: ranges of code points (single characters are ranges of one)."""

    negated: bool
    ranges: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Group:
    """``( a | b )``, or the whole pattern when ``capturing`` is false."""

    alternatives: tuple[Seq, ...]
    capturing: bool = True


@dataclass(frozen=True, slots=True)
class Repeat:
    """A quantified atom; ``high`` is ``None`` for unbounded."""

    atom: Node
    low: int
    high: int | None


@dataclass(frozen=True, slots=True)
class Seq:
    """Atoms one after another."""

    items: tuple[Node, ...]


Node = Lit | Dot | Anchor | CharClass | Group | Repeat | Seq


# --- parser ------------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0

    def fail(self, message: str, position: int | None = None) -> RegexSubsetError:
        return RegexSubsetError(self.pattern, self.pos if position is None else position, message)

    def peek(self) -> str:
        return self.pattern[self.pos] if self.pos < len(self.pattern) else ""

    def parse(self) -> Group:
        group = self.alternation()
        if self.pos != len(self.pattern):
            raise self.fail("unbalanced ')'")
        return Group(group, capturing=False)

    def alternation(self) -> tuple[Seq, ...]:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.sequence())
        return tuple(branches)

    def sequence(self) -> Seq:
        items: list[Node] = []
        while (char := self.peek()) and char not in "|)":
            start = self.pos
            atom = self.atom()
            quantifier = self.quantifier()
            if quantifier is not None:
                if isinstance(atom, Anchor):
                    raise self.fail("a quantifier after ^ or $ is not allowed", start)
                atom = Repeat(atom, *quantifier)
                if self.peek() in ("?", "+", "*", "{"):
                    raise self.fail("lazy, possessive or nested quantifiers are outside the subset")
            items.append(atom)
        return Seq(tuple(items))

    def quantifier(self) -> tuple[int, int | None] | None:
        char = self.peek()
        if char == "?":
            self.pos += 1
            return (0, 1)
        if char == "*":
            self.pos += 1
            return (0, None)
        if char == "+":
            self.pos += 1
            return (1, None)
        if char == "{":
            match = re.compile(r"\{(\d*)(,?)(\d*)\}").match(self.pattern, self.pos)
            if not match or (not match.group(1) and not match.group(3)):
                raise self.fail("a bare '{' is not a quantifier here; escape it as \\{")
            low, comma, high = match.groups()
            if not low:
                raise self.fail("{,n} is read differently by .NET (literal text) and Python (0 to n); write {0,n}")
            if len(low) > 4 or len(high) > 4:
                raise self.fail("repeat counts above 9999 are not allowed")
            self.pos = match.end()
            low_n = int(low)
            if not comma:
                return (low_n, low_n)
            high_n = int(high) if high else None
            if high_n is not None and high_n < low_n:
                raise self.fail(f"{{{low},{high}}}: the upper bound is below the lower bound")
            return (low_n, high_n)
        return None

    def atom(self) -> Node:
        char = self.peek()
        start = self.pos
        if char in ("?", "*", "+"):
            raise self.fail(f"'{char}' has nothing to repeat")
        if char == "{":
            raise self.fail("a bare '{' has nothing to repeat; escape it as \\{")
        if char == "(":
            self.pos += 1
            if self.peek() == "?":
                raise self.fail(
                    "(?...) groups and inline options are outside the subset; use plain ( ) and the rule's "
                    "case_sensitive setting"
                )
            alternatives = self.alternation()
            if self.peek() != ")":
                raise self.fail("unclosed '('", start)
            self.pos += 1
            return Group(alternatives)
        if char == "[":
            return self.char_class()
        if char == "]":
            raise self.fail("a bare ']' is ambiguous; escape it as \\]")
        if char == ".":
            self.pos += 1
            return Dot()
        if char in ("^", "$"):
            self.pos += 1
            return Anchor(char)
        if char == "\\":
            return Lit(self.escape())
        self.pos += 1
        return Lit(char)

    def escape(self) -> str:
        start = self.pos
        self.pos += 1
        char = self.peek()
        if not char:
            raise self.fail("the pattern ends with a lone backslash", start)
        self.pos += 1
        if char == "n":
            return "\n"
        if char == "t":
            return "\t"
        if char in _PUNCT:
            return char
        if char.isdigit():
            raise self.fail("back-references and octal escapes are outside the subset", start)
        hint = _LETTER_HINTS.get(char, "only \\n, \\t and escaped punctuation are in the subset")
        raise self.fail(f"\\{char} is outside the subset: {hint}", start)

    def class_char(self) -> str:
        char = self.peek()
        if not char:
            raise self.fail("unclosed '['")
        if char == "\\":
            return self.escape()
        if char == "[":
            raise self.fail("'[' inside a class is read differently by .NET and Python; escape it as \\[")
        self.pos += 1
        return char

    def char_class(self) -> CharClass:
        start = self.pos
        self.pos += 1
        negated = False
        if self.peek() == "^":
            negated = True
            self.pos += 1
        if self.peek() == "]":
            raise self.fail("an empty class or a leading ']' is ambiguous; escape ']' as \\]")
        ranges: list[tuple[str, str]] = []
        while True:
            char = self.peek()
            if not char:
                raise self.fail("unclosed '['", start)
            if char == "]":
                self.pos += 1
                break
            if self.pattern.startswith(("&&", "~~", "||", "--"), self.pos):
                raise self.fail("doubled '&&', '~~', '||' or '--' inside a class is reserved by Python; escape it")
            item_start = self.pos
            low = self.class_char()
            if self.peek() == "-" and self.pattern[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.pos += 1
                if self.peek() == "[":
                    raise self.fail("class subtraction -[...] is .NET only")
                high = self.class_char()
                if ord(high) < ord(low):
                    raise self.fail(f"range {low!r}-{high!r} is reversed", item_start)
                ranges.append((low, high))
            else:
                ranges.append((low, low))
        return CharClass(negated, tuple(ranges))


def parse(pattern: str) -> Group:
    """Parse a pattern, raising ``RegexSubsetError`` for anything outside the subset."""
    return _Parser(pattern).parse()


# --- writer ------------------------------------------------------------------------------------------------


def _lit(char: str, inside_class: bool = False) -> str:
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if ord(char) < 0x20 or ord(char) == 0x7F:
        raise ValueError(f"control character U+{ord(char):04X} cannot be written in the SCOM regex subset")
    special = _ESCAPE_INSIDE if inside_class else _ESCAPE_OUTSIDE
    return "\\" + char if char in special else char


def _write(node: Node) -> str:
    if isinstance(node, Lit):
        return _lit(node.char)
    if isinstance(node, Dot):
        return "."
    if isinstance(node, Anchor):
        return node.kind
    if isinstance(node, CharClass):
        body = "".join(
            _lit(low, True) if low == high else f"{_lit(low, True)}-{_lit(high, True)}" for low, high in node.ranges
        )
        return f"[{'^' if node.negated else ''}{body}]"
    if isinstance(node, Group):
        inner = "|".join(_write(seq) for seq in node.alternatives)
        return f"({inner})" if node.capturing else inner
    if isinstance(node, Repeat):
        atom = _write(node.atom)
        if isinstance(node.atom, Seq | Repeat) or (isinstance(node.atom, Group) and not node.atom.capturing):
            atom = f"({atom})"
        if (node.low, node.high) == (0, 1):
            return atom + "?"
        if (node.low, node.high) == (0, None):
            return atom + "*"
        if (node.low, node.high) == (1, None):
            return atom + "+"
        if node.high == node.low:
            return f"{atom}{{{node.low}}}"
        return f"{atom}{{{node.low},{'' if node.high is None else node.high}}}"
    return "".join(_write(item) for item in node.items)


def write(node: Node) -> str:
    """Write an AST back as a pattern in the subset (canonical escaping)."""
    return _write(node)


def canonical(pattern: str) -> str:
    """Validate a pattern and return it in canonical form (same meaning, subset-only escapes)."""
    return write(parse(pattern))


def escape_literal(text: str) -> str:
    """A pattern matching ``text`` literally, using only subset escapes.

    Raises:
        ValueError: ``text`` holds a control character other than tab and line feed.
    """
    return "".join(_lit(char) for char in text)


# --- required literals (for pre-filtering) -----------------------------------------------------------------

_MAX_VARIANTS = 16


def _lits_of(node: Node) -> frozenset[str] | None:
    """Every match of ``node`` is exactly one of these strings, or ``None`` when that set is not small."""
    if isinstance(node, Lit):
        return frozenset({node.char})
    if isinstance(node, CharClass) and not node.negated:
        chars = {chr(c) for low, high in node.ranges for c in range(ord(low), ord(high) + 1)}
        return frozenset(chars) if len(chars) <= 8 else None
    if isinstance(node, Group):
        out: set[str] = set()
        for seq in node.alternatives:
            part = _lits_of(seq)
            if part is None:
                return None
            out |= part
        return frozenset(out) if len(out) <= _MAX_VARIANTS else None
    if isinstance(node, Seq):
        acc: frozenset[str] = frozenset({""})
        for item in node.items:
            part = _lits_of(item)
            if part is None:
                return None
            acc = frozenset(a + b for a in acc for b in part)
            if len(acc) > _MAX_VARIANTS:
                return None
        return acc
    return None


def _score(options: frozenset[str]) -> int:
    return min((len(o) for o in options), default=0)


def required_substrings(node: Node) -> frozenset[str] | None:
    """A set of strings one of which every match must contain, or ``None`` when we cannot tell.

    Used only as a necessary condition: when none of the strings occurs in a value, the pattern cannot match.
    """
    if isinstance(node, Group):
        out: set[str] = set()
        for seq in node.alternatives:
            part = required_substrings(seq)
            if not part:
                return None
            out |= part
        return frozenset(out) if len(out) <= _MAX_VARIANTS else None
    if isinstance(node, Repeat):
        return required_substrings(node.atom) if node.low >= 1 else None
    if isinstance(node, Seq):
        best: frozenset[str] | None = None
        run: frozenset[str] = frozenset({""})

        def offer(candidate: frozenset[str] | None) -> None:
            nonlocal best
            if candidate and _score(candidate) > 0 and (best is None or _score(candidate) > _score(best)):
                best = candidate

        for item in node.items:
            exact = _lits_of(item)
            if exact is not None and not isinstance(item, Anchor):
                joined = frozenset(a + b for a in run for b in exact)
                if len(joined) <= _MAX_VARIANTS:
                    run = joined
                    continue
                offer(run)
                run = exact
                continue
            if isinstance(item, Anchor):
                continue
            offer(run)
            run = frozenset({""})
            offer(required_substrings(item))
        offer(run)
        return best
    exact = _lits_of(node)
    return exact if exact and _score(exact) > 0 else None


def required_suffixes(node: Node) -> frozenset[str] | None:
    """Strings one of which ends every value the pattern matches (before an optional final line feed), or ``None``.

    Known only for patterns whose every alternative ends with literal text and then ``$`` (``endswith`` compiles
    to that). ``$`` also matches before one final line feed, so a value may end with the string plus ``\\n``.
    """
    if not isinstance(node, Group):
        return None
    out: set[str] = set()
    for seq in node.alternatives:
        items = seq.items
        if not items or items[-1] != Anchor("$"):
            return None
        tail: frozenset[str] = frozenset({""})
        for item in reversed(items[:-1]):
            exact = _lits_of(item)
            if exact is None or isinstance(item, Anchor):
                break
            joined = frozenset(b + a for a in tail for b in exact)
            if len(joined) > _MAX_VARIANTS:
                break
            tail = joined
        if _score(tail) == 0:
            return None
        out |= tail
    return frozenset(out) if len(out) <= _MAX_VARIANTS else None
