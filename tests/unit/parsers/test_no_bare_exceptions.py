"""Whatever text a host sends, a parser returns facts or raises ParseError, never a bare exception."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procaudit.errors import ParseError
from procaudit.parsers.auditpol import parse_audit_csv
from procaudit.parsers.gpresult import parse_policy_xml
from procaudit.parsers.sddl import parse_sddl, readers
from procaudit.parsers.secedit import parse_security_template
from procaudit.parsers.wevtutil import parse_wevtutil_gl


def _template(text: str) -> object:
    inf = parse_security_template(text)
    return inf.event_audit(), inf.registry_values(), inf.log_settings(), inf.force_subcategory


def _policy(text: str) -> object:
    sources = parse_policy_xml(text)
    return sources.process_creation(), sources.cmdline_setting(), sources.security_log_max_size()


PARSERS: list[Callable[[str], object]] = [
    parse_audit_csv,
    _template,
    parse_wevtutil_gl,
    readers,
    parse_sddl,
    _policy,
]

# Text made of the characters these formats are built from, so the parsers get past their first checks.
_ALPHABET = st.sampled_from([*",;:=()[]{}<>/\\\"' \n\r\t-.0123456789ADGOSWabcxy", "S-1-5-", "0CCE922B", "<a>"])
_TEXT = st.lists(_ALPHABET, max_size=80).map("".join)


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=150, deadline=None)
@given(text=_TEXT)
def test_random_text(parse: Callable[[str], object], text: str) -> None:
    with contextlib.suppress(ParseError):
        parse(text)
