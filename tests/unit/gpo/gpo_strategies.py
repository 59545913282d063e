"""Hypothesis strategies for registry.pol entries, shared by the PReg and the Samba tests."""

from __future__ import annotations

from hypothesis import strategies as st

from procaudit.gpo.polfile import PolEntry

_ID_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\")
_VALUE_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# Any Unicode text a registry string can hold: no NUL, no lone surrogates (astral characters are fine).
_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=30)

keys = st.lists(st.text(_ID_CHARS, min_size=1, max_size=20), min_size=1, max_size=5).map("\\".join)
value_names = st.one_of(
    st.text(_VALUE_CHARS, min_size=1, max_size=40),
    st.sampled_from(["**delvals.", "**del.MaxSize", "**DeleteValues", "**soft.X"]),
)


@st.composite
def typed_entries(draw: st.DrawFn) -> PolEntry:
    key, name = draw(keys), draw(value_names)
    kind = draw(st.sampled_from(["sz", "expand_sz", "dword", "qword", "multi_sz", "binary"]))
    if kind == "sz":
        return PolEntry.sz(key, name, draw(_TEXT))
    if kind == "expand_sz":
        return PolEntry.expand_sz(key, name, draw(_TEXT))
    if kind == "dword":
        return PolEntry.dword(key, name, draw(st.integers(0, 2**32 - 1)))
    if kind == "qword":
        return PolEntry.qword(key, name, draw(st.integers(0, 2**64 - 1)))
    if kind == "multi_sz":
        return PolEntry.multi_sz(key, name, draw(st.lists(_TEXT.filter(bool), max_size=5)))
    return PolEntry.binary(key, name, draw(st.binary(max_size=300)))
