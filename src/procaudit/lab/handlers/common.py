"""What the lab's handlers share: PowerShell parameter binding as Windows PowerShell 5.1 reports its failures.

The binder runs before the script: a missing mandatory parameter, a value that fails ``[ValidatePattern()]``,
``[ValidateRange()]`` or ``[ValidateSet()]``, or one that does not convert to the parameter's type stops the call
with PowerShell's message (``BindingError``) and the script never runs. Every handler binds through these.
"""

from __future__ import annotations

import re
from typing import Any

from procaudit.lab.wsman import ScriptRun

PROGRAM_DATA = "C:\\ProgramData"
STAGING = PROGRAM_DATA + "\\procaudit\\staging"


class BindingError(Exception):
    """The parameter binder refused the call: the script never ran (the message is PowerShell's)."""


def as_list(value: Any) -> list[Any]:
    """A ``[string[]]`` / ``[int[]]`` parameter's values (a single value binds as a one-element array)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def mandatory(run: ScriptRun, name: str) -> Any:
    """A ``[Parameter(Mandatory = $true)]`` parameter's value."""
    if name not in run.parameters:
        raise BindingError(f"Cannot process command because of one or more missing mandatory parameters: {name}.")
    if run.parameters[name] is None:
        raise BindingError(f"Cannot bind argument to parameter '{name}' because it is null.")
    return run.parameters[name]


def validate_pattern(name: str, values: list[Any], pattern: str) -> list[str]:
    """``[ValidatePattern()]`` on each value: a case-insensitive regex search, as PowerShell's."""
    for value in values:
        if not re.search(pattern, str(value), re.IGNORECASE):
            raise BindingError(
                f"Cannot validate argument on parameter '{name}'. The argument \"{value}\" does not match the "
                f'"{pattern}" pattern. Supply an argument that matches "{pattern}" and try the command again.'
            )
    return [str(v) for v in values]


def validate_range(name: str, values: list[Any], low: int, high: int, *, type_name: str = "System.Int32") -> list[int]:
    """Conversion to ``type_name`` and ``[ValidateRange(low, high)]`` on each value."""
    numbers = []
    for value in values:
        if isinstance(value, bool):
            value = str(value)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise BindingError(
                f"Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{value}\" "
                f'to type "{type_name}". Error: "Input string was not in a correct format."'
            ) from None
        if number < low:
            raise BindingError(
                f"Cannot validate argument on parameter '{name}'. The {number} argument is less than the minimum "
                f"allowed range of {low}. Supply an argument that is greater than or equal to {low} and then try "
                "the command again."
            )
        if number > high:
            raise BindingError(
                f"Cannot validate argument on parameter '{name}'. The {number} argument is greater than the "
                f"maximum allowed range of {high}. Supply an argument that is less than or equal to {high} and "
                "then try the command again."
            )
        numbers.append(number)
    return numbers


def validate_set(name: str, values: list[Any], allowed: tuple[str, ...]) -> list[str]:
    """``[ValidateSet()]`` on each value (case-insensitive); returns the set's spelling."""
    for value in values:
        if not any(str(value).lower() == a.lower() for a in allowed):
            raise BindingError(
                f"Cannot validate argument on parameter '{name}'. The argument \"{value}\" does not belong to the set "
                f'"{",".join(allowed)}" specified by the ValidateSet attribute. Supply an argument that is in the set '
                "and then try the command again."
            )
    return [next(a for a in allowed if a.lower() == str(v).lower()) for v in values]


def text_param(run: ScriptRun, name: str, pattern: str) -> str:
    """A mandatory ``[ValidatePattern()]`` string parameter."""
    return validate_pattern(name, [mandatory(run, name)], pattern)[0]


def int_param(run: ScriptRun, name: str, low: int, high: int, *, type_name: str = "System.Int64") -> int:
    """A mandatory ``[ValidateRange()]`` integer parameter."""
    return validate_range(name, [mandatory(run, name)], low, high, type_name=type_name)[0]


def optional_int(run: ScriptRun, name: str, default: int, low: int, high: int) -> int:
    """An optional ``[ValidateRange()][int]`` parameter with its default."""
    if run.parameters.get(name) is None:
        return default
    return validate_range(name, [run.parameters[name]], low, high)[0]


def what_if(run: ScriptRun) -> bool:
    """Whether the call carries -WhatIf (then ``$PSCmdlet.ShouldProcess`` returns false)."""
    return bool(run.parameters.get("WhatIf"))
