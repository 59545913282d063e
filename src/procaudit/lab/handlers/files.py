"""Lab implementation of deploy/Copy-ProcauditFile.ps1: a file arriving as Base64 chunks on the pipeline."""

from __future__ import annotations

import base64
import binascii
import hashlib

from procaudit.lab.handlers.common import STAGING, BindingError, int_param, text_param, what_if
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun

_BAD_BASE64 = (
    'Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid Base-64 string as it '
    "contains a non-base 64 character, more than two padding characters, or an illegal character among the padding "
    'characters. "'
)


@handles("Copy-ProcauditFile")
def _copy_file(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    try:
        name = text_param(run, "Name", r"^[A-Za-z0-9_.-]{1,200}$")
        expected = text_param(run, "Sha256", r"^[0-9a-fA-F]{64}$")
        length = int_param(run, "Length", 0, 67108864)
        if not run.input:
            raise BindingError("Cannot process command because of one or more missing mandatory parameters: Chunk.")
    except BindingError as exc:
        return ScriptOutcome(failure=str(exc))
    buffer = bytearray()
    for chunk in run.input:
        try:
            buffer += base64.b64decode(str(chunk), validate=True)
        except (binascii.Error, ValueError):
            return ScriptOutcome(failure=_BAD_BASE64)
        if len(buffer) > length:
            return ScriptOutcome(
                failure=f"Copy-ProcauditFile: received more than the announced {length} bytes for {name}"
            )
    actual = hashlib.sha256(buffer).hexdigest()
    if len(buffer) != length or actual != expected.lower():
        return ScriptOutcome(
            failure=f"Copy-ProcauditFile: {name} arrived damaged ({len(buffer)} of {length} bytes, SHA-256 {actual}); "
            "nothing was written"
        )
    path = f"{STAGING}\\{name}"
    written = not what_if(run)
    if written:
        ctx.host.files[path] = bytes(buffer)
    return ScriptOutcome(output=[ps_json({"Path": path, "Length": len(buffer), "Sha256": actual, "Written": written})])
