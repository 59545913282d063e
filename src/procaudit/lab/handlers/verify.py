"""Lab implementation of checks/Test-ProcessCreationEvent.ps1 (procaudit verify's marker).

The marker process starts on the modelled host: ``eventlog.record_process_start`` appends its 4688 only if
Process Creation auditing is effective, with the command line only if inclusion is on and the OS supports it
(version 0 events have no CommandLine field). When no event appears the script polls until its timeout, and
so does the lab (the client's deadline can stop it).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from procaudit.lab import eventlog, wintext
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun
from procaudit.verify import MARKER_PREFIX

SYSTEM32 = r"C:\Windows\system32"  # [Environment]::SystemDirectory
IMAGE = r"C:\Windows\System32\cmd.exe"  # how the kernel names the image in NewProcessName
# The marker is written to the log this long after it starts (Windows: within milliseconds).
LOG_DELAY = timedelta(milliseconds=15)


@handles("Test-ProcessCreationEvent")
def _verify(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    host = ctx.host
    nonce = str(run.parameters["Nonce"])
    timeout = int(run.parameters.get("TimeoutSeconds", 30))
    poll_ms = int(run.parameters.get("PollMilliseconds", 500))
    started = datetime.now(UTC)
    pid = random.randrange(0x400, 0x8000, 4)
    process_id = f"0x{pid:x}"
    # ProcessStartInfo with UseShellExecute off quotes the file name and appends the arguments.
    command_line = f'"{SYSTEM32}\\cmd.exe" /d /c rem {MARKER_PREFIX}{nonce}'
    fields = {
        "SubjectUserSid": "S-1-5-21-3623811015-3361044348-30300820-1013",
        "SubjectUserName": "operator",
        "SubjectDomainName": "LAB",
        "SubjectLogonId": "0x5f3e2",
        "NewProcessId": process_id,
        "NewProcessName": IMAGE,
        "TokenElevationType": "%%1936",
        "ProcessId": "0x1a2c",
        "CommandLine": command_line,
        "TargetUserSid": "S-1-0-0",
        "TargetUserName": "-",
        "TargetDomainName": "-",
        "TargetLogonId": "0x0",
        "ParentProcessName": r"C:\Windows\System32\wsmprovhost.exe",
        "MandatoryLabel": "S-1-16-12288",
    }
    event = eventlog.record_process_start(host, fields, started + LOG_DELAY)
    found = None
    polls = 1
    if event is not None:
        found = {
            "TimeCreated": wintext.dotnet_utc(event.time),
            "RecordId": event.record_id,
            "Version": host.event_version(),
            "NewProcessName": event.fields["NewProcessName"],
            "CommandLine": event.fields.get("CommandLine"),
        }
    else:
        # Nothing will appear: the script reads the log every PollMilliseconds until its timeout.
        polls = max(1, timeout * 1000 // poll_ms)
        run.cancelled.wait(timeout)
    waited = int((datetime.now(UTC) - started).total_seconds() * 1000)
    marker = MARKER_PREFIX + nonce
    has_marker = bool(found and found["CommandLine"] and marker in str(found["CommandLine"]))
    return ScriptOutcome(
        output=[
            ps_json(
                {
                    "Nonce": nonce,
                    "MarkerStartedAt": wintext.dotnet_utc(started),
                    "MarkerProcessId": process_id,
                    "Polls": polls,
                    "WaitedMilliseconds": waited,
                    "Event": found,
                    "CommandLineHasMarker": has_marker,
                }
            )
        ]
    )
