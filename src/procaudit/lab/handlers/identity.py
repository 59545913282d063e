"""Lab implementation of checks/Get-HostIdentity.ps1."""

from __future__ import annotations

from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun


@handles("Get-HostIdentity")
def _host_identity(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    os = ctx.host.os
    return ScriptOutcome(
        output=[
            ps_json(
                {
                    "ComputerName": os.computer_name,
                    "PSVersion": os.ps_version,
                    "OSCaption": os.caption,
                    "OSVersion": os.version,
                    "OSBuild": os.build,
                    "ProductType": os.product_type,
                }
            )
        ]
    )
