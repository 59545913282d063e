<#
.SYNOPSIS
    Count process creations per hour over a recent window, on the host, and measure the Security log.

.DESCRIPTION
    Read-only. 'procaudit estimate' runs it to size the 4688 volume a host will add. All counting happens
    here: only hourly counts and a few totals go back over the wire, never an event, so a host with a
    million events costs the network what a host with a hundred does.

    Sources, in this order; the first one with any event in the window is counted and named in Source:
      Security 4688            process creation is audited already (the real thing);
      Sysmon/Operational 1     Sysmon runs and logs process creation;
      Security 4689            process termination is audited (exits match starts over a day or more).
    Records are read with EventLogReader and an XPath filter on EventID and TimeCreated, newest first, one at
    a time, and only their hour is kept. Counting stops after MaxRecords records read or TimeBudgetSeconds (the
    clock is checked at every record, and no single read may wait past the budget: a filtered scan can spend
    long between matches): then Truncated is true, TruncatedBy says which bound, TruncatedIn names the source
    being read, and CountedFromUtc is the oldest record counted (the counts cover CountedFromUtc to now, not
    the whole window). A stop before anything was counted leaves Source empty but Truncated set: the later
    sources were not tried, so this is no evidence that the host has no events. Get-WinEvent would wrap every record in a PowerShell object with its rendered
    message, which a million records cannot afford.

    Record size: the rendered XML length of the newest SizeSampleCount 4688 records and of the newest
    SizeSampleCount other records, beside the log's FileSize and RecordCount. The sample runs until the end of
    the time budget, or for a tenth of it more when counting used it all; SizeSample.Truncated says it stopped. procaudit takes the disk bytes
    per XML character from what the file really holds (FileSize over the XML the log's records would render
    to, 4688 and others in their counted proportion) and applies it to the 4688 mean: FileSize alone
    averages over every event id, and the newest records' mix is not the whole log's.

.PARAMETER WindowHours
    How far back to count, in hours (168 = 7 days). The log's retention may hold less; FirstEventUtc and
    SourceLogOldestUtc tell how much.

.PARAMETER SizeSampleCount
    How many of the newest records to read for the size measurement.

.PARAMETER MaxRecords
    Stop counting after this many records of the source (newest first).

.PARAMETER TimeBudgetSeconds
    Stop counting after this many seconds, so that a huge log returns partial counts within the caller's
    deadline instead of none.

.OUTPUTS
    One JSON document: NowUtc, UtcOffsetMinutes, ProductType, TerminalServerMode, FirstHour, Source, Counts,
    Total, FirstEventUtc, LastEventUtc, SourceLogOldestUtc, Truncated, TruncatedBy, TruncatedIn, CountedFromUtc,
    SecurityLog (MaximumSizeInBytes, LogMode, FileSize, RecordCount, OldestRecordUtc) and SizeSample
    (ProcessRecords, ProcessXmlChars, WithCommandLine, OtherRecords, OtherXmlChars, Truncated). Times are seconds since 1970-01-01 UTC; FirstHour is hours since then and
    Counts[i] counts the hour FirstHour + i (the first and the last hour are partial).
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 8784)]
    [int]$WindowHours = 168,

    [ValidateRange(1, 5000)]
    [int]$SizeSampleCount = 200,

    [ValidateRange(1000, 1000000000)]
    [long]$MaxRecords = 20000000,

    [ValidateRange(10, 86400)]
    [int]$TimeBudgetSeconds = 900
)

$ErrorActionPreference = 'Stop'

$epoch = New-Object -TypeName DateTime -ArgumentList 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc)
$now = [DateTime]::UtcNow
$nowSeconds = [long][Math]::Floor(($now - $epoch).TotalSeconds)
$firstHour = [long][Math]::Floor(($nowSeconds - [long]$WindowHours * 3600) / 3600)
$buckets = [int]([Math]::Floor($nowSeconds / 3600) - $firstHour + 1)
$windowMilliseconds = [long]$WindowHours * 3600000
$sysmonLog = 'Microsoft-Windows-Sysmon/Operational'
$watch = [System.Diagnostics.Stopwatch]::StartNew()

function New-Reader {
    param([string]$LogName, [string]$XPath, [bool]$Newest)
    $query = New-Object -TypeName System.Diagnostics.Eventing.Reader.EventLogQuery -ArgumentList $LogName, ([System.Diagnostics.Eventing.Reader.PathType]::LogName), $XPath
    $query.ReverseDirection = $Newest
    New-Object -TypeName System.Diagnostics.Eventing.Reader.EventLogReader -ArgumentList $query
}

function Read-Record {
    # The next record; $null at the end; $false when the deadline (seconds on $watch) has passed. One ReadEvent of
    # a filtered query can scan many non-matching records, so it gets the time left as its timeout.
    param($Reader, [double]$Deadline)
    $left = $Deadline - $watch.Elapsed.TotalSeconds
    if ($left -le 0) { return $false }
    try {
        $record = $Reader.ReadEvent([TimeSpan]::FromSeconds($left))
    } catch [System.Diagnostics.Eventing.Reader.EventLogException] {
        # A read that runs out of time throws (a $null record only ever means the end of the results); any other
        # error, or one well before the deadline, is real.
        if ($watch.Elapsed.TotalSeconds -ge $Deadline - 0.1) { return $false }
        throw
    }
    return $record
}

function Measure-HourlyCount {
    param([string]$LogName, [int]$EventId)
    $counts = New-Object -TypeName 'long[]' -ArgumentList $buckets
    $total = [long]0
    $read = [long]0
    $first = $null
    $last = $null
    $truncatedBy = $null
    $xpath = "*[System[(EventID=$EventId) and TimeCreated[timediff(@SystemTime) <= $windowMilliseconds]]]"
    $reader = New-Reader -LogName $LogName -XPath $xpath -Newest $true
    try {
        while ($true) {
            $record = Read-Record -Reader $reader -Deadline $TimeBudgetSeconds
            if ($record -is [bool]) { $truncatedBy = 'TimeBudget'; break }
            if ($null -eq $record) { break }
            $read++
            $seconds = [long][Math]::Floor(($record.TimeCreated.ToUniversalTime() - $epoch).TotalSeconds)
            $record.Dispose()
            $index = [int]([Math]::Floor($seconds / 3600) - $firstHour)
            if ($index -ge 0 -and $index -lt $buckets) {
                $counts[$index]++
                $total++
                if ($null -eq $last) { $last = $seconds }
                $first = $seconds
            }
            if ($read -ge $MaxRecords) { $truncatedBy = 'MaxRecords'; break }
        }
    } finally {
        $reader.Dispose()
    }
    [pscustomobject]@{ Counts = $counts; Total = $total; First = $first; Last = $last; TruncatedBy = $truncatedBy }
}

function Get-OldestRecordUtc {
    param([string]$LogName)
    $oldest = $null
    $reader = New-Reader -LogName $LogName -XPath '*' -Newest $false
    try {
        $record = $reader.ReadEvent()
        if ($null -ne $record) {
            $oldest = [long][Math]::Floor(($record.TimeCreated.ToUniversalTime() - $epoch).TotalSeconds)
            $record.Dispose()
        }
    } finally {
        $reader.Dispose()
    }
    $oldest
}

function Measure-XmlLength {
    param([string]$XPath, [bool]$CommandLine, [double]$Deadline)
    $records = 0
    $stopped = $false
    $chars = [long]0
    $withCommandLine = 0
    $reader = New-Reader -LogName 'Security' -XPath $XPath -Newest $true
    try {
        while ($records -lt $SizeSampleCount) {
            $record = Read-Record -Reader $reader -Deadline $Deadline
            if ($record -is [bool]) { $stopped = $true; break }
            if ($null -eq $record) { break }
            $chars += $record.ToXml().Length
            # 4688 data item 9 (index 8) is CommandLine in event versions 1 and 2.
            if ($CommandLine -and $record.Properties.Count -ge 9 -and [string]$record.Properties[8].Value) {
                $withCommandLine++
            }
            $record.Dispose()
            $records++
        }
    } finally {
        $reader.Dispose()
    }
    [pscustomobject]@{ Records = $records; Chars = $chars; WithCommandLine = $withCommandLine; Truncated = $stopped }
}

$sysmonPresent = $true
try {
    $null = New-Object -TypeName System.Diagnostics.Eventing.Reader.EventLogConfiguration -ArgumentList $sysmonLog
} catch {
    $sysmonPresent = $false
}

$source = ''
$stoppedIn = $null
$measured = $null
$sourceLog = 'Security'
$candidates = @(
    @{ Name = 'Security/4688'; Log = 'Security'; Id = 4688 },
    @{ Name = 'Sysmon/1'; Log = $sysmonLog; Id = 1 },
    @{ Name = 'Security/4689'; Log = 'Security'; Id = 4689 }
)
foreach ($candidate in $candidates) {
    if ($candidate.Log -eq $sysmonLog -and -not $sysmonPresent) { continue }
    $measured = Measure-HourlyCount -LogName $candidate.Log -EventId $candidate.Id
    if ($measured.Total -gt 0) {
        $source = $candidate.Name
        $sourceLog = $candidate.Log
        break
    }
    if ($measured.TruncatedBy) {
        # Stopped before counting anything: the later sources would find the budget spent, and an empty count
        # here says nothing about this source.
        $stoppedIn = $candidate.Name
        break
    }
}

$config = New-Object -TypeName System.Diagnostics.Eventing.Reader.EventLogConfiguration -ArgumentList 'Security'
$info = [System.Diagnostics.Eventing.Reader.EventLogSession]::GlobalSession.GetLogInformation('Security', [System.Diagnostics.Eventing.Reader.PathType]::LogName)
$securityOldest = Get-OldestRecordUtc -LogName 'Security'
$sourceOldest = $securityOldest
if ($sourceLog -ne 'Security') {
    $sourceOldest = Get-OldestRecordUtc -LogName $sourceLog
}

$sizeDeadline = [Math]::Max([double]$TimeBudgetSeconds, $watch.Elapsed.TotalSeconds + $TimeBudgetSeconds / 10)
$processSize = [pscustomobject]@{ Records = 0; Chars = 0; WithCommandLine = 0; Truncated = $false }
if ($source -eq 'Security/4688') {
    $processSize = Measure-XmlLength -XPath '*[System[(EventID=4688)]]' -CommandLine $true -Deadline $sizeDeadline
}
$otherSize = Measure-XmlLength -XPath '*[System[EventID!=4688]]' -CommandLine $false -Deadline $sizeDeadline

$os = Get-CimInstance -ClassName Win32_OperatingSystem -Property 'ProductType'
$terminalServerMode = $null
try {
    $terminal = Get-CimInstance -Namespace 'root/cimv2/TerminalServices' -ClassName Win32_TerminalServiceSetting -Property 'TerminalServerMode'
    $terminalServerMode = [int]$terminal.TerminalServerMode
} catch {
    $terminalServerMode = $null
}

$counts = @()
$total = [long]0
$firstEvent = $null
$lastEvent = $null
$truncatedBy = $null
if ($source) {
    $counts = $measured.Counts
    $total = $measured.Total
    $firstEvent = $measured.First
    $lastEvent = $measured.Last
    $truncatedBy = $measured.TruncatedBy
    if ($truncatedBy) { $stoppedIn = $source }
} elseif ($stoppedIn) {
    $truncatedBy = $measured.TruncatedBy
}

[pscustomobject]@{
    NowUtc             = $nowSeconds
    UtcOffsetMinutes   = [int][TimeZoneInfo]::Local.GetUtcOffset($now).TotalMinutes
    ProductType        = [int]$os.ProductType
    TerminalServerMode = $terminalServerMode
    FirstHour          = $firstHour
    Source             = $source
    Counts             = $counts
    Total              = $total
    FirstEventUtc      = $firstEvent
    LastEventUtc       = $lastEvent
    SourceLogOldestUtc = $sourceOldest
    Truncated          = [bool]$truncatedBy
    TruncatedBy        = $truncatedBy
    TruncatedIn        = $stoppedIn
    CountedFromUtc     = $(if ($truncatedBy -and $source) { $firstEvent } else { $null })
    SecurityLog        = [pscustomobject]@{
        MaximumSizeInBytes = $config.MaximumSizeInBytes
        LogMode            = $config.LogMode.ToString()
        FileSize           = $info.FileSize
        RecordCount        = $info.RecordCount
        OldestRecordUtc    = $securityOldest
    }
    SizeSample         = [pscustomobject]@{
        ProcessRecords  = $processSize.Records
        ProcessXmlChars = $processSize.Chars
        WithCommandLine = $processSize.WithCommandLine
        OtherRecords    = $otherSize.Records
        OtherXmlChars   = $otherSize.Chars
        Truncated       = [bool]($processSize.Truncated -or $otherSize.Truncated)
    }
} | ConvertTo-Json -Compress -Depth 3
