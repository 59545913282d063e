"""The script contract: every remote task is a shipped ``Verb-Noun.ps1`` plus a typed Python spec.

A script takes its values only as PSRP parameters (never interpolated into its text) and writes exactly
one JSON document. ``ScriptSpec`` names the file, the parameter model (field aliases are the PowerShell
parameter names) and the result model the JSON must validate against.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal

from procaudit.content import ContentFolder, content_path
from procaudit.errors import ContentError


class ScriptParams(BaseModel):
    """Parameters of a remote script. Field ``max_size_bytes`` binds to ``-MaxSizeBytes``."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, frozen=True, extra="forbid")

    def to_psrp(self) -> dict[str, Any]:
        """The values to bind with ``PowerShell.add_parameters``; ``None`` values are left unbound."""
        return {k: v for k, v in self.model_dump(mode="json", by_alias=True).items() if v is not None}


class ScriptResult(BaseModel):
    """The one JSON document a remote script writes. Keys are PascalCase as PowerShell writes them."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="ignore")


#: PowerShell's common parameters: a script gets them from [CmdletBinding()], never from its param() block.
COMMON_PARAMETERS = frozenset({"WhatIf", "Confirm", "Verbose", "Debug"})

P = TypeVar("P", bound=ScriptParams)
R = TypeVar("R", bound=ScriptResult)


@dataclass(frozen=True)
class ScriptSpec(Generic[P, R]):
    """A shipped remote script and its contract."""

    name: str
    folder: ContentFolder
    params: type[P]
    result: type[R]
    mutating: bool = False

    @property
    def path(self) -> Path:
        return content_path(self.folder, f"{self.name}.ps1")

    @cached_property
    def text(self) -> str:
        """The script exactly as shipped; it is sent byte-for-byte so the host runs what was reviewed."""
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContentError(f"cannot read remote script {self.path}: {exc.strerror}") from exc

    @property
    def param_names(self) -> list[str]:
        """The names the script's ``param()`` block declares (common parameters such as -WhatIf excluded)."""
        names = [field.alias or name for name, field in self.params.model_fields.items()]
        return [name for name in names if name not in COMMON_PARAMETERS]
