"""registry.pol (PReg) writer and reader: exact bytes, round trips, malformed input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from gpo_strategies import keys, typed_entries, value_names
from hypothesis import given, settings
from hypothesis import strategies as st

from procaudit.errors import UserInputError
from procaudit.gpo.polfile import (
    HEADER,
    MAX_DATA_BYTES,
    MAX_VALUE_NAME_CHARS,
    ControlCode,
    PolEntry,
    PolFileError,
    RegType,
    decode_pol,
    encode_pol,
    read_pol,
    write_pol,
)

CMDLINE_KEY = r"Software\Microsoft\Windows\CurrentVersion\Policies\System\Audit"
CMDLINE_VALUE = "ProcessCreationIncludeCmdLine_Enabled"

# The whole file for ProcessCreationIncludeCmdLine_Enabled = REG_DWORD 1, as Samba's NDR marshalling
# (samba.dcerpc.preg, python3-samba 4.17) writes it. The reference (gpo_audit.md 4.2) gives the same
# layout: 8-byte header, then a 228-byte instruction.
SAMBA_CMDLINE_POL = bytes.fromhex(
    "50526567010000005b0053006f006600740077006100720065005c004d006900630072006f0073006f00660074005c00"
    "570069006e0064006f00770073005c00430075007200720065006e007400560065007200730069006f006e005c005000"
    "6f006c00690063006900650073005c00530079007300740065006d005c004100750064006900740000003b0050007200"
    "6f0063006500730073004300720065006100740069006f006e0049006e0063006c0075006400650043006d0064004c00"
    "69006e0065005f0045006e00610062006c006500640000003b00040000003b00040000003b00010000005d00"
)


def test_cmdline_entry_bytes_match_samba_and_reference_layout() -> None:
    data = encode_pol([PolEntry.dword(CMDLINE_KEY, CMDLINE_VALUE, 1)])
    assert data == SAMBA_CMDLINE_POL
    assert data[:8] == b"PReg\x01\x00\x00\x00"
    assert len(data) - 8 == 228
    # type, size and data are raw DWORDs between UTF-16LE semicolons, then "]"
    assert data.endswith(b";\x00\x04\x00\x00\x00;\x00\x04\x00\x00\x00;\x00\x01\x00\x00\x00]\x00")


def test_reads_the_samba_bytes() -> None:
    (entry,) = decode_pol(SAMBA_CMDLINE_POL)
    assert (entry.key, entry.value_name, entry.type, entry.size, entry.value) == (
        CMDLINE_KEY,
        CMDLINE_VALUE,
        RegType.REG_DWORD,
        4,
        1,
    )


def test_empty_file_is_header_only() -> None:
    assert encode_pol([]) == HEADER == b"PReg\x01\x00\x00\x00"
    assert decode_pol(HEADER) == []


@pytest.mark.parametrize(
    ("entry", "data", "value"),
    [
        (PolEntry.sz("K", "v", "ab"), "ab\0".encode("utf-16-le"), "ab"),
        (PolEntry.sz("K", "v", ""), b"\0\0", ""),
        (PolEntry.expand_sz("K", "v", "%windir%"), "%windir%\0".encode("utf-16-le"), "%windir%"),
        (PolEntry.dword("K", "v", 0xFFFFFFFF), b"\xff\xff\xff\xff", 0xFFFFFFFF),
        (PolEntry.qword("K", "v", 2**40), struct.pack("<Q", 2**40), 2**40),
        (PolEntry.multi_sz("K", "v", ["a", "bc"]), "a\0bc\0\0".encode("utf-16-le"), ["a", "bc"]),
        (PolEntry.multi_sz("K", "v", []), b"\0\0", []),
        (PolEntry.binary("K", "v", b"\x00\x01\xff"), b"\x00\x01\xff", b"\x00\x01\xff"),
    ],
)
def test_typed_constructors_encode_windows_style(entry: PolEntry, data: bytes, value: object) -> None:
    assert entry.data == data
    assert entry.size == len(data)
    assert entry.value == value
    assert decode_pol(encode_pol([entry])) == [entry]


def test_big_endian_dword_is_read() -> None:
    entry = PolEntry(key="K", value_name="v", type=RegType.REG_DWORD_BIG_ENDIAN, data=b"\x01\x02\x03\x04")
    assert entry.value == 0x01020304


def test_delete_markers_look_like_gpmc_ones() -> None:
    # GPMC writes **del.<name> as REG_SZ " " (size 4), seen in the NSA SHB registry.pol.
    deleted = PolEntry.delete_value(r"Software\Policies\X", "Foo")
    assert (deleted.value_name, deleted.type, deleted.size, deleted.value) == ("**del.Foo", RegType.REG_SZ, 4, " ")
    assert deleted.control is ControlCode.DELETE_VALUE
    assert deleted.target_name == "Foo"
    everything = PolEntry.delete_all_values(r"Software\Policies\X")
    assert everything.value_name == "**delvals."
    assert everything.control is ControlCode.DELETE_ALL_VALUES
    assert everything.target_name is None


@pytest.mark.parametrize(
    ("name", "code", "target"),
    [
        ("MaxSize", None, None),
        ("**del.MaxSize", ControlCode.DELETE_VALUE, "MaxSize"),
        ("**Del.vals", ControlCode.DELETE_VALUE, "vals"),
        ("**delvals.", ControlCode.DELETE_ALL_VALUES, None),
        ("**DelVals.", ControlCode.DELETE_ALL_VALUES, None),
        ("**DeleteValues", ControlCode.DELETE_VALUES, None),
        ("**DeleteKeys ", ControlCode.DELETE_KEYS, None),
        ("**SecureKey", ControlCode.SECURE_KEY, None),
        ("**soft.Foo", ControlCode.SOFT, "Foo"),
        ("**future.Foo", ControlCode.UNKNOWN, None),
        ("*single", None, None),
    ],
)
def test_control_codes_are_classified(name: str, code: ControlCode | None, target: str | None) -> None:
    entry = PolEntry.sz("K", name, " ")
    assert entry.control is code
    assert entry.target_name == target


@pytest.mark.parametrize("key", ["", "\\Software", "Software\\", "Software\\\\X", "Soft\x00ware"])
def test_malformed_key_paths_are_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="key path"):
        PolEntry.dword(key, "v", 1)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (PolEntry.dword("Software\\Ünïcode", "v", 1), "printable ASCII"),
        (PolEntry.dword("K", "vä", 1), "printable ASCII"),
        (PolEntry(key="K", value_name="", type=RegType.REG_SZ, data=b"\0\0"), "1..259"),
        (PolEntry.dword("K", "v" * (MAX_VALUE_NAME_CHARS + 1), 1), "1..259"),
        (PolEntry.binary("K", "v", b"x" * (MAX_DATA_BYTES + 1)), "65535"),
    ],
)
def test_writer_keeps_to_the_abnf(entry: PolEntry, message: str) -> None:
    with pytest.raises(PolFileError, match=message):
        encode_pol([entry])


def test_writer_accepts_the_abnf_limits() -> None:
    entry = PolEntry.binary("K", "v" * MAX_VALUE_NAME_CHARS, b"x" * MAX_DATA_BYTES)
    assert decode_pol(encode_pol([entry])) == [entry]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (PolEntry(key="K", value_name="v", type=RegType.REG_DWORD, data=b"\x01\x00\x00"), "4 bytes"),
        (PolEntry(key="K", value_name="v", type=RegType.REG_QWORD, data=b"\x01"), "8 bytes"),
        (PolEntry(key="K", value_name="v", type=RegType.REG_SZ, data=b"a\x00b"), "odd number"),
        (PolEntry(key="K", value_name="v", type=RegType.REG_SZ, data=b"\x00\xd8"), "not valid UTF-16LE"),
    ],
)
def test_value_reports_data_that_does_not_fit_the_type(entry: PolEntry, message: str) -> None:
    with pytest.raises(PolFileError, match=message):
        _ = entry.value


def test_value_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"0\.\.4294967295"):
        PolEntry.dword("K", "v", 2**32)
    with pytest.raises(ValueError, match="non-empty"):
        PolEntry.multi_sz("K", "v", ["a", ""])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "first 4 bytes must be 'PReg'"),
        (b"PReg", "first 4 bytes must be 'PReg'"),
        (b"REGP\x01\x00\x00\x00", "first 4 bytes must be 'PReg'"),
        (b"PReg\x02\x00\x00\x00", "unsupported registry.pol version 2"),
        (HEADER + b"x", "expected '\\[' starting an instruction"),
        (HEADER + "[K".encode("utf-16-le"), "key path has no terminating"),
        (HEADER + "[K\0]".encode("utf-16-le"), "expected ';' after the key path"),
        (HEADER + "[K\0;v\0;".encode("utf-16-le") + b"\x04\x00", "inside the type field"),
        (
            HEADER + "[K\0;v\0;".encode("utf-16-le") + b"\x06\x00\x00\x00;\x00\x00\x00\x00\x00;\x00]\x00",
            "unknown registry type 6",
        ),
        (
            HEADER + "[K\0;v\0;".encode("utf-16-le") + b"\x04\x00\x00\x00;\x00\x09\x00\x00\x00;\x00\x01\x00",
            "size 9 runs past the end",
        ),
        (
            HEADER + "[K\0;v\0;".encode("utf-16-le") + b"\x04\x00\x00\x00;\x00\x01\x00\x00\x00;\x00\x01;\x00",
            "expected '\\]' ending the instruction",
        ),
        (HEADER + "[\\K\0;v\0;".encode("utf-16-le") + b"\x04\0\0\0;\0\0\0\0\0;\0]\0", "empty component"),
        (HEADER + b"[\x00\x00\xdc\x00\x00", "not valid UTF-16LE"),
    ],
)
def test_malformed_files_raise_pol_file_error_with_offset(data: bytes, message: str) -> None:
    with pytest.raises(PolFileError, match=message) as caught:
        decode_pol(data, source="t.pol")
    assert str(caught.value).startswith("t.pol: ")
    assert isinstance(caught.value, UserInputError)


def test_nul_straddling_two_characters_is_not_a_terminator() -> None:
    # U+0041 U+4100 encodes as 41 00 | 00 41: a 00 00 pair at an odd offset, inside the key, not its end.
    key = "\u0041\u4100"
    raw = HEADER + b"[\x00" + key.encode("utf-16-le") + b"\x00\x00;\x00v\x00\x00\x00;\x00"
    raw += b"\x04\x00\x00\x00;\x00\x04\x00\x00\x00;\x00\x01\x00\x00\x00]\x00"
    assert decode_pol(raw) == [PolEntry.dword(key, "v", 1)]


def test_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "registry.pol"
    entries = [PolEntry.dword(CMDLINE_KEY, CMDLINE_VALUE, 1), PolEntry.delete_all_values("Software\\X")]
    write_pol(path, entries)
    assert read_pol(path) == entries


# -- property tests ------------------------------------------------------------------------------------

raw_entries = st.builds(
    PolEntry,
    key=keys,
    value_name=value_names,
    type=st.sampled_from(list(RegType)),
    data=st.binary(max_size=200),
)


@given(st.lists(st.one_of(typed_entries(), raw_entries), max_size=8))
def test_round_trip_any_writable_entries(entries: list[PolEntry]) -> None:
    data = encode_pol(entries)
    assert decode_pol(data) == entries
    assert encode_pol(decode_pol(data)) == data


@given(typed_entries())
def test_typed_values_survive_the_round_trip(entry: PolEntry) -> None:
    (again,) = decode_pol(encode_pol([entry]))
    assert again.value == entry.value


@given(st.binary(max_size=400))
def test_reader_never_fails_other_than_pol_file_error_on_random_bytes(data: bytes) -> None:
    for candidate in (data, HEADER + data):
        try:
            entries = decode_pol(candidate)
        except PolFileError:
            continue
        assert encode_pol_lenient(entries) == candidate[8:]


def encode_pol_lenient(entries: list[PolEntry]) -> bytes:
    """Re-encode without the writer's ABNF limits, to check the reader consumed exactly the input."""
    out = b""
    for e in entries:
        out += b"[\x00" + e.key.encode("utf-16-le") + b"\x00\x00;\x00" + e.value_name.encode("utf-16-le")
        out += b"\x00\x00;\x00" + struct.pack("<I", e.type) + b";\x00" + struct.pack("<I", len(e.data)) + b";\x00"
        out += e.data + b"]\x00"
    return out


@settings(max_examples=50)
@given(st.lists(typed_entries(), min_size=1, max_size=3), st.data())
def test_every_truncation_is_an_error_or_a_prefix(entries: list[PolEntry], data: st.DataObject) -> None:
    full = encode_pol(entries)
    boundaries = {len(encode_pol(entries[:n])): entries[:n] for n in range(len(entries) + 1)}
    cut = data.draw(st.integers(0, len(full) - 1))
    try:
        result = decode_pol(full[:cut])
    except PolFileError:
        assert cut not in boundaries
    else:
        assert boundaries[cut] == result
