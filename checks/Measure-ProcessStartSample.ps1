<#
.SYNOPSIS
    Count the processes that start on the host during a short live sample (WMI Win32_ProcessStartTrace).

.DESCRIPTION
    Read-only. 'procaudit estimate' runs it only for hosts whose event logs hold no history of process
    starts (no 4688, no Sysmon event 1, too little 4689). It subscribes to Win32_ProcessStartTrace for
    SampleSeconds, counts the starts the subscription saw, and removes the subscription and its queued events
    before it returns, so the remote session is left as it was. Only the count goes back over the wire.

    The subscription needs administrative rights and lives in this session: it ends with the script.
    Win32_ProcessStartTrace reports every process start; it carries no command line, so record sizes are
    not measured this way.

.PARAMETER SampleSeconds
    How long to count, in seconds. procaudit extends this script's deadline by the same amount.

.OUTPUTS
    One JSON document: Count, StartUtc (seconds since 1970-01-01 UTC), Seconds (the measured length of
    the sample) and UtcOffsetMinutes.
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 3600)]
    [int]$SampleSeconds = 60
)

$ErrorActionPreference = 'Stop'

$epoch = New-Object -TypeName DateTime -ArgumentList 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc)
$sourceId = 'procaudit-process-start-sample-' + [guid]::NewGuid().ToString('N')

$null = Register-CimIndicationEvent -ClassName 'Win32_ProcessStartTrace' -SourceIdentifier $sourceId
try {
    $started = [DateTime]::UtcNow
    Start-Sleep -Seconds $SampleSeconds
    $ended = [DateTime]::UtcNow
    $seen = @(Get-Event | Where-Object { $_.SourceIdentifier -eq $sourceId })
} finally {
    Unregister-Event -SourceIdentifier $sourceId
    Get-Event | Where-Object { $_.SourceIdentifier -eq $sourceId } | Remove-Event
}

[pscustomobject]@{
    Count            = $seen.Count
    StartUtc         = [long][Math]::Floor(($started - $epoch).TotalSeconds)
    Seconds          = [Math]::Round(($ended - $started).TotalSeconds, 3)
    UtcOffsetMinutes = [int][TimeZoneInfo]::Local.GetUtcOffset($started).TotalMinutes
} | ConvertTo-Json -Compress -Depth 2
