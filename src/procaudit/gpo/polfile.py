"""Read and write registry.pol files (the PReg format of [MS-GPREG] section 2.2.1).

A file is the 4-byte signature ``PReg``, a little-endian DWORD version 1, then instructions::

    [key;value;type;size;data]

The brackets and semicolons are UTF-16LE characters (``5B 00``, ``3B 00``, ``5D 00``). ``key`` and
``value`` are UTF-16LE strings, each followed by a UTF-16LE NUL (``00 00``). ``type`` and ``size`` are raw
little-endian DWORDs (not text) and ``data`` is ``size`` raw bytes. The key path has no hive: a file
under ``Machine\\`` applies to HKLM, one under ``User\\`` to HKCU.

Value names that start with ``**`` are control codes rather than values: ``**del.<name>`` deletes one
value, ``**delvals.`` deletes every value of the key, and so on (see :class:`ControlCode`).

The reader is liberal (any UTF-16 text, any data size, every type the grammar lists); the writer is
strict and writes only what the [MS-GPREG] ABNF allows (printable ASCII key and value names, value names
of 1 to 259 characters, data of at most 65535 bytes), so whatever it writes it can also read back.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, field_validator

from procaudit.gpo.errors import PolFileError

SIGNATURE = b"PReg"
VERSION = 1
HEADER = SIGNATURE + struct.pack("<I", VERSION)

_ENCODING = "utf-16-le"
_OPEN = "[".encode(_ENCODING)
_SEMICOLON = ";".encode(_ENCODING)
_CLOSE = "]".encode(_ENCODING)
_NUL = b"\x00\x00"

# Limits of the [MS-GPREG] 2.2.1 ABNF: Value = 1*259ValueCharacter; Data = *65535OCTET.
MAX_VALUE_NAME_CHARS = 259
MAX_DATA_BYTES = 65535

# What the Group Policy editor writes as the data of a **del. / **delvals. instruction: REG_SZ " " (a space
# and its NUL, size 4) -- observed in a GPMC-written registry.pol (NSA Secure Host Baseline backup).
_CONTROL_DATA = " \x00".encode(_ENCODING)


class RegType(enum.IntEnum):
    """Registry value types the PReg grammar allows (``Type = %x01 / %x02 / %x03 / %x04 / %x05 / %x07 / %x0B``)."""

    REG_SZ = 1
    REG_EXPAND_SZ = 2
    REG_BINARY = 3
    REG_DWORD = 4
    REG_DWORD_BIG_ENDIAN = 5
    REG_MULTI_SZ = 7
    REG_QWORD = 11


class ControlCode(enum.Enum):
    """What a ``**``-prefixed value name asks the registry extension to do (names compare case-insensitively)."""

    DELETE_VALUE = "**del."  # **del.<name>: delete value <name>
    DELETE_ALL_VALUES = "**delvals."  # delete every value of the key
    DELETE_VALUES = "**deletevalues"  # data: semicolon-separated value names to delete
    DELETE_KEYS = "**deletekeys"  # data: semicolon-separated subkeys to delete
    SECURE_KEY = "**securekey"  # data: 1 secures the key (admins/system full, users read), 0 resets
    SOFT = "**soft."  # **soft.<name>: set <name> only if it does not exist yet
    UNKNOWN = "**"  # any other control code; a policy client skips such a value


_CONTROL_CODES = (
    ControlCode.DELETE_ALL_VALUES,
    ControlCode.DELETE_VALUE,
    ControlCode.SOFT,
    ControlCode.DELETE_VALUES,
    ControlCode.DELETE_KEYS,
    ControlCode.SECURE_KEY,
)
_NAMED_CODES = (ControlCode.DELETE_VALUE, ControlCode.SOFT)


class PolEntry(BaseModel):
    """One ``[key;value;type;size;data]`` instruction. ``data`` holds the raw bytes; ``value`` decodes them.

    Build entries with the typed constructors (:meth:`dword`, :meth:`sz`, ...); ``size`` is always
    ``len(data)`` and is not stored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    value_name: str
    type: RegType
    data: bytes

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: str) -> str:
        if "\x00" in key:
            raise ValueError("a registry key path cannot contain NUL")
        # KeyPath = Key / KeyPath "\" Key, Key = 1*IdCharacter: no empty component anywhere.
        if any(part == "" for part in key.split("\\")):
            raise ValueError(
                f"registry key path {key!r} is empty or has an empty component (leading, trailing or double backslash)"
            )
        return key

    @field_validator("value_name")
    @classmethod
    def _check_value_name(cls, name: str) -> str:
        if "\x00" in name:
            raise ValueError("a registry value name cannot contain NUL")
        return name

    # -- typed constructors -------------------------------------------------------------------------

    @classmethod
    def sz(cls, key: str, name: str, text: str) -> Self:
        """A REG_SZ value (stored with its terminating NUL, as Windows does)."""
        return cls(key=key, value_name=name, type=RegType.REG_SZ, data=_encode_string(text))

    @classmethod
    def expand_sz(cls, key: str, name: str, text: str) -> Self:
        """A REG_EXPAND_SZ value (``%VARIABLES%`` expanded by the reader of the value, not by us)."""
        return cls(key=key, value_name=name, type=RegType.REG_EXPAND_SZ, data=_encode_string(text))

    @classmethod
    def dword(cls, key: str, name: str, number: int) -> Self:
        """A REG_DWORD value (unsigned 32-bit, little-endian)."""
        if not 0 <= number <= 0xFFFFFFFF:
            raise ValueError(f"REG_DWORD {name!r} must be 0..4294967295, got {number}")
        return cls(key=key, value_name=name, type=RegType.REG_DWORD, data=struct.pack("<I", number))

    @classmethod
    def qword(cls, key: str, name: str, number: int) -> Self:
        """A REG_QWORD value (unsigned 64-bit, little-endian)."""
        if not 0 <= number <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"REG_QWORD {name!r} must be 0..18446744073709551615, got {number}")
        return cls(key=key, value_name=name, type=RegType.REG_QWORD, data=struct.pack("<Q", number))

    @classmethod
    def multi_sz(cls, key: str, name: str, strings: Iterable[str]) -> Self:
        """A REG_MULTI_SZ value: each string NUL-terminated, then one more NUL."""
        items = list(strings)
        for item in items:
            if item == "" or "\x00" in item:
                # An empty item would read back as the end of the list.
                raise ValueError(f"REG_MULTI_SZ {name!r} items must be non-empty and free of NUL, got {item!r}")
        text = "".join(item + "\x00" for item in items) + "\x00"
        return cls(key=key, value_name=name, type=RegType.REG_MULTI_SZ, data=text.encode(_ENCODING))

    @classmethod
    def binary(cls, key: str, name: str, blob: bytes) -> Self:
        """A REG_BINARY value."""
        return cls(key=key, value_name=name, type=RegType.REG_BINARY, data=bytes(blob))

    @classmethod
    def delete_value(cls, key: str, name: str) -> Self:
        """``**del.<name>``: the policy deletes value ``name`` of ``key``."""
        if name == "":
            raise ValueError("**del. needs the name of the value to delete")
        return cls(key=key, value_name=ControlCode.DELETE_VALUE.value + name, type=RegType.REG_SZ, data=_CONTROL_DATA)

    @classmethod
    def delete_all_values(cls, key: str) -> Self:
        """``**delvals.``: the policy deletes every value of ``key`` before setting the key's other values."""
        return cls(key=key, value_name=ControlCode.DELETE_ALL_VALUES.value, type=RegType.REG_SZ, data=_CONTROL_DATA)

    # -- reading --------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The ``size`` field as written: the number of data bytes."""
        return len(self.data)

    @property
    def control(self) -> ControlCode | None:
        """The control code this value name carries, or ``None`` for an ordinary value."""
        lowered = self.value_name.lower()
        if not lowered.startswith("**"):
            return None
        # No prefix is a prefix of another ("**del." vs "**delvals." differ at index 5); **DeleteKeys may be
        # followed by a space or NUL, so these match as prefixes too.
        for code in _CONTROL_CODES:
            if lowered.startswith(code.value):
                return code
        return ControlCode.UNKNOWN

    @property
    def target_name(self) -> str | None:
        """For ``**del.<name>`` and ``**soft.<name>``, the value name they act on (original case kept)."""
        code = self.control
        if code is not None and code in _NAMED_CODES:
            return self.value_name[len(code.value) :]
        return None

    @property
    def value(self) -> str | int | list[str] | bytes:
        """The data decoded by type: ``str`` (SZ, EXPAND_SZ), ``int`` (DWORD, QWORD), ``list[str]`` (MULTI_SZ)
        or ``bytes`` (BINARY).

        Raises:
            PolFileError: the data does not fit the type (e.g. a REG_DWORD that is not 4 bytes long).
        """
        data = self.data
        where = f"{self.key}\\{self.value_name}"
        if self.type in (RegType.REG_SZ, RegType.REG_EXPAND_SZ):
            text = _decode_utf16(data, where)
            return text[:-1] if text.endswith("\x00") else text
        if self.type in (RegType.REG_DWORD, RegType.REG_DWORD_BIG_ENDIAN):
            if len(data) != 4:
                raise PolFileError(f"{where}: {self.type.name} data must be 4 bytes, found {len(data)}")
            return int(struct.unpack("<I" if self.type is RegType.REG_DWORD else ">I", data)[0])
        if self.type is RegType.REG_QWORD:
            if len(data) != 8:
                raise PolFileError(f"{where}: REG_QWORD data must be 8 bytes, found {len(data)}")
            return int(struct.unpack("<Q", data)[0])
        if self.type is RegType.REG_MULTI_SZ:
            text = _decode_utf16(data, where)
            # "a\0b\0\0" -> [a, b]; tolerate a missing final terminator.
            while text.endswith("\x00"):
                text = text[:-1]
            return text.split("\x00") if text else []
        return data


def _encode_string(text: str) -> bytes:
    if "\x00" in text:
        raise ValueError("a REG_SZ / REG_EXPAND_SZ string cannot contain NUL")
    return (text + "\x00").encode(_ENCODING)


def _decode_utf16(data: bytes, where: str) -> str:
    if len(data) % 2:
        raise PolFileError(f"{where}: string data has an odd number of bytes ({len(data)})")
    try:
        return data.decode(_ENCODING)
    except UnicodeDecodeError as exc:
        raise PolFileError(f"{where}: string data is not valid UTF-16LE ({exc.reason})") from None


# -- writer ---------------------------------------------------------------------------------------------


def _is_abnf_text(text: str, *, allow_backslash: bool) -> bool:
    # IdCharacter = %x20-5B / %x5D-7E (no backslash); ValueCharacter = SP / VCHAR (%x20-7E).
    return all(0x20 <= ord(ch) <= 0x7E and (allow_backslash or ch != "\\") for ch in text)


def check_writable(entry: PolEntry) -> None:
    """Raise :class:`PolFileError` unless ``entry`` is within what the [MS-GPREG] grammar allows.

    Raises:
        PolFileError: the key or value name has characters outside printable ASCII, the value name is
            empty or longer than 259 characters, or the data is longer than 65535 bytes.
    """
    where = f"{entry.key}\\{entry.value_name}"
    if not all(_is_abnf_text(part, allow_backslash=False) for part in entry.key.split("\\")):
        raise PolFileError(f"{where}: key path must be printable ASCII (MS-GPREG IdCharacter)")
    if not 1 <= len(entry.value_name) <= MAX_VALUE_NAME_CHARS:
        raise PolFileError(f"{where}: value name must be 1..{MAX_VALUE_NAME_CHARS} characters (MS-GPREG Value)")
    if not _is_abnf_text(entry.value_name, allow_backslash=True):
        raise PolFileError(f"{where}: value name must be printable ASCII (MS-GPREG ValueCharacter)")
    if len(entry.data) > MAX_DATA_BYTES:
        raise PolFileError(f"{where}: data is {len(entry.data)} bytes; MS-GPREG allows at most {MAX_DATA_BYTES}")


def encode_instruction(entry: PolEntry) -> bytes:
    """The bytes of one instruction, ``[`` to ``]`` (no header)."""
    check_writable(entry)
    return b"".join(
        (
            _OPEN,
            entry.key.encode(_ENCODING),
            _NUL,
            _SEMICOLON,
            entry.value_name.encode(_ENCODING),
            _NUL,
            _SEMICOLON,
            struct.pack("<I", int(entry.type)),
            _SEMICOLON,
            struct.pack("<I", len(entry.data)),
            _SEMICOLON,
            entry.data,
            _CLOSE,
        )
    )


def encode_pol(entries: Iterable[PolEntry]) -> bytes:
    """A whole registry.pol file: header then the instructions in the given order.

    Raises:
        PolFileError: an entry is outside what the format allows (see :func:`check_writable`).
    """
    return HEADER + b"".join(encode_instruction(entry) for entry in entries)


def write_pol(path: Path, entries: Iterable[PolEntry]) -> None:
    """Write ``entries`` to ``path`` as a registry.pol file (plain write; callers choose atomicity)."""
    Path(path).write_bytes(encode_pol(entries))


# -- reader ---------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def fail(self, message: str, at: int | None = None) -> PolFileError:
        offset = self.pos if at is None else at
        return PolFileError(f"{self.source}: {message} at byte offset {offset} (0x{offset:X})")

    def expect(self, token: bytes, name: str) -> None:
        if self.data[self.pos : self.pos + len(token)] != token:
            found = self.data[self.pos : self.pos + len(token)].hex(" ") or "end of file"
            raise self.fail(f"expected {name} (UTF-16LE {token.hex(' ')}), found {found}")
        self.pos += len(token)

    def string(self, what: str) -> str:
        start = self.pos
        end = start
        while True:
            end = self.data.find(_NUL, end)
            if end < 0:
                raise self.fail(f"{what} has no terminating UTF-16LE NUL", at=start)
            if (end - start) % 2 == 0:
                break
            end += 1  # a 00 00 that straddles two characters: keep looking
        raw = self.data[start:end]
        try:
            text = raw.decode(_ENCODING)
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not valid UTF-16LE ({exc.reason})", at=start) from None
        self.pos = end + len(_NUL)
        return text

    def dword(self, what: str) -> int:
        if self.pos + 4 > len(self.data):
            raise self.fail(f"file ends inside the {what} field")
        (number,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        return int(number)


def decode_pol(data: bytes, *, source: str = "registry.pol") -> list[PolEntry]:
    """Parse a registry.pol file into its instructions, in file order.

    Args:
        data: the file's bytes.
        source: a name for error messages (a path).

    Raises:
        PolFileError: wrong signature or version, a truncated or malformed instruction, an unknown type,
            or text that is not UTF-16LE. The message names the byte offset.
    """
    reader = _Reader(data, source)
    if len(data) < len(HEADER) or data[:4] != SIGNATURE:
        raise PolFileError(f"{source}: not a registry.pol file (the first 4 bytes must be 'PReg', found {data[:4]!r})")
    (version,) = struct.unpack_from("<I", data, 4)
    if version != VERSION:
        raise PolFileError(f"{source}: unsupported registry.pol version {version} (only version {VERSION} exists)")
    reader.pos = len(HEADER)
    entries: list[PolEntry] = []
    while reader.pos < len(data):
        start = reader.pos
        reader.expect(_OPEN, "'[' starting an instruction")
        key = reader.string("key path")
        reader.expect(_SEMICOLON, "';' after the key path")
        value_name = reader.string("value name")
        reader.expect(_SEMICOLON, "';' after the value name")
        type_code = reader.dword("type")
        reader.expect(_SEMICOLON, "';' after the type")
        size = reader.dword("size")
        reader.expect(_SEMICOLON, "';' after the size")
        if reader.pos + size > len(data):
            raise reader.fail(f"size {size} runs past the end of the file")
        payload = data[reader.pos : reader.pos + size]
        reader.pos += size
        reader.expect(_CLOSE, "']' ending the instruction")
        try:
            reg_type = RegType(type_code)
        except ValueError:
            raise reader.fail(f"unknown registry type {type_code}", at=start) from None
        try:
            entries.append(PolEntry(key=key, value_name=value_name, type=reg_type, data=payload))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise reader.fail(f"invalid instruction ({_first_error(exc)})", at=start) from None
    return entries


def read_pol(path: Path) -> list[PolEntry]:
    """Read and parse the registry.pol file at ``path`` (see :func:`decode_pol`)."""
    path = Path(path)
    return decode_pol(path.read_bytes(), source=str(path))


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        items = errors()
        if items:
            return str(items[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc)
