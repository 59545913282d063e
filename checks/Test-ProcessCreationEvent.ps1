<#
.SYNOPSIS
    Prove that process creation is logged with its command line: start a harmless marker, find its 4688.

.DESCRIPTION
    Starts "cmd.exe /d /c rem procaudit-verify-<Nonce>" (a command that does nothing and exits), then polls
    the Security log for the 4688 event of that process (by its process id, since the marker started) until
    TimeoutSeconds pass. Returns only the matched event's time, record id, NewProcessName and CommandLine,
    and whether the command line carries the marker; no other event leaves the host.

.PARAMETER Nonce
    32 lower-case hex characters that make this run's marker unique.

.PARAMETER TimeoutSeconds
    How long to wait for the event.

.PARAMETER PollMilliseconds
    Pause between two reads of the Security log.

.OUTPUTS
    One JSON document; procaudit.verify.VerifyResult describes it.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][ValidatePattern('^[0-9a-f]{32}$')][string]$Nonce,
    [ValidateRange(1, 600)][int]$TimeoutSeconds = 30,
    [ValidateRange(100, 10000)][int]$PollMilliseconds = 500
)

$ErrorActionPreference = 'Stop'
$marker = "procaudit-verify-$Nonce"

$info = New-Object System.Diagnostics.ProcessStartInfo
$info.FileName = Join-Path ([Environment]::SystemDirectory) 'cmd.exe'
$info.Arguments = "/d /c rem $marker"
$info.UseShellExecute = $false
$info.CreateNoWindow = $true
$started = [DateTime]::UtcNow
$process = [System.Diagnostics.Process]::Start($info)
$processId = '0x{0:x}' -f $process.Id
$null = $process.WaitForExit(10000)

# 4688 writes NewProcessId in lower-case hex with 0x; the marker's start time bounds the search.
$since = $started.AddSeconds(-2).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
$query = "*[System[(EventID=4688) and TimeCreated[@SystemTime>='$since']]] and *[EventData[Data[@Name='NewProcessId']='$processId']]"
$deadline = $started.AddSeconds($TimeoutSeconds)
$polls = 0
$found = $null
while ($true) {
    $polls++
    $records = @()
    try {
        $records = @(Get-WinEvent -LogName 'Security' -FilterXPath $query -MaxEvents 5)
    } catch {
        if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { throw }
    }
    foreach ($record in $records) {
        $data = @{}
        foreach ($item in ([xml]($record.ToXml())).Event.EventData.Data) { $data[$item.GetAttribute('Name')] = $item.InnerText }
        if ($data['NewProcessName'] -like '*\cmd.exe') {
            $found = [pscustomobject]@{
                TimeCreated    = $record.TimeCreated.ToUniversalTime().ToString('o')
                RecordId       = $record.RecordId
                Version        = [int]$record.Version
                NewProcessName = $data['NewProcessName']
                CommandLine    = $data['CommandLine']
            }
            break
        }
    }
    if ($found -or [DateTime]::UtcNow -ge $deadline) { break }
    Start-Sleep -Milliseconds $PollMilliseconds
}

[pscustomobject]@{
    Nonce                = $Nonce
    MarkerStartedAt      = $started.ToString('o')
    MarkerProcessId      = $processId
    Polls                = $polls
    WaitedMilliseconds   = [int]([DateTime]::UtcNow - $started).TotalMilliseconds
    Event                = $found
    CommandLineHasMarker = [bool]($found -and $found.CommandLine -and $found.CommandLine.Contains($marker))
} | ConvertTo-Json -Compress -Depth 3
