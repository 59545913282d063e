"""What the lab's handlers share: PowerShell parameter binding as Windows PowerShell 5.1 reports its failures."""

from __future__ import annotations

import re
from typing import Any

from procaudit.lab.wsman import ScriptRun

PROGRAM_DATA = "C:\\ProgramData"
STAGING = PROGRAM_DATA + "\\procaudit\\staging"


class BindingError(Exception):
    """The parameter binder refused the call: the script never ran (the message is PowerShell's)."""


def text_param(run: ScriptRun, name: str, pattern: str) -> str:
    """A mandatory ``[ValidatePattern()]`` string parameter. PowerShell matches the pattern case-insensitively."""
    value = run.parameters.get(name)
    if value is None:
        raise BindingError(f"Cannot process command because of one or more missing mandatory parameters: {name}.")
    text = str(value)
    if not re.search(pattern, text, re.IGNORECASE):
        raise BindingError(
            f'Cannot validate argument on parameter \'{name}\'. The argument "{text}" does not match the "{pattern}" '
            f'pattern. Supply an argument that matches "{pattern}" and try the command again.'
        )
    return text


def int_param(run: ScriptRun, name: str, low: int, high: int) -> int:
    """A mandatory ``[ValidateRange()]`` integer parameter."""
    value: Any = run.parameters.get(name)
    if value is None:
        raise BindingError(f"Cannot process command because of one or more missing mandatory parameters: {name}.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BindingError(
            f"Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{value}\" to "
            'type "System.Int64". Error: "Input string was not in a correct format."'
        ) from None
    if not low <= number <= high:
        raise BindingError(
            f"Cannot validate argument on parameter '{name}'. The {number} argument is greater than the maximum "
            f"allowed range of {high}. Supply an argument that is less than or equal to {high} and then try the "
            "command again."
            if number > high
            else f"Cannot validate argument on parameter '{name}'. The {number} argument is less than the minimum "
            f"allowed range of {low}. Supply an argument that is greater than or equal to {low} and then try the "
            "command again."
        )
    return number


def what_if(run: ScriptRun) -> bool:
    """Whether the call carries -WhatIf (then ``$PSCmdlet.ShouldProcess`` returns false)."""
    return bool(run.parameters.get("WhatIf"))
