<#
.SYNOPSIS
    Gather every fact the procaudit readiness checks need, in one script run.

.DESCRIPTION
    Read-only; one run per host. Returns raw material that procaudit parses: auditpol /backup, the
    [Event Audit] section of secedit /export, registry values, wevtutil gl Security, Security log statistics,
    Event Log Readers members by SID, hotfixes (Windows 7/8 only), 4688 counts (counted here: no event
    content leaves the host), the SCOM agent, and gpresult /x trimmed to the settings procaudit reads.
    A part that fails is named in Errors; the others are still returned. Temporary files are removed.

.PARAMETER WindowHours
    Count 4688 events of the last this many hours.

.PARAMETER MaxEvents
    Count at most this many of the newest 4688 events.

.PARAMETER PolicyNames
    Display names of the Administrative Template policies to keep from gpresult.

.OUTPUTS
    One JSON document; procaudit.facts.ProbeResult describes it.
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 720)][int]$WindowHours = 24,
    [ValidateRange(1, 100000)][int]$MaxEvents = 2000,
    [string[]]$PolicyNames = @()
)

$ErrorActionPreference = 'Stop'
$errors = @{}
$system32 = [Environment]::SystemDirectory
$tempBase = Join-Path ([System.IO.Path]::GetTempPath()) ('procaudit-' + [guid]::NewGuid().ToString('N'))

function Invoke-Native([string]$Exe, [string[]]$Arguments) {
    # Windows PowerShell 5.1 wraps each stderr line of a native command redirected with 2>&1 in an ErrorRecord;
    # under 'Stop' the first one would end the script before the exit code is known. Capture under 'Continue'
    # (local to this function) and judge by the exit code; stderr lines come back as plain text.
    # A program that cannot start (missing, blocked by AppLocker/WDAC) sets no exit code: $LASTEXITCODE would
    # still hold the previous program's. Reset it first; a launch failure, or no exit code at all, is -1.
    $ErrorActionPreference = 'Continue'
    $program = Join-Path $system32 $Exe
    $lines = @()
    $global:LASTEXITCODE = $null
    try {
        $lines = @(& $program @Arguments 2>&1)
    } catch {
        return [pscustomobject]@{ ExitCode = -1; Output = "$Exe did not run: $($_.Exception.Message)" }
    }
    $code = $LASTEXITCODE
    $text = @($lines | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { $_.Exception.Message } else { [string]$_ } }) -join "`n"
    if ($null -eq $code) {
        return [pscustomobject]@{ ExitCode = -1; Output = "$Exe did not run (no exit code): $text" }
    }
    return [pscustomobject]@{ ExitCode = $code; Output = $text }
}

function Get-NativeFileText([string]$Exe, [string[]]$Arguments, [string]$OutFile) {
    try {
        $run = Invoke-Native $Exe $Arguments
        if ($run.ExitCode -ne 0) { throw "$Exe exited with code $($run.ExitCode): $($run.Output)" }
        return [System.IO.File]::ReadAllText($OutFile)
    } finally {
        if (Test-Path -LiteralPath $OutFile) { Remove-Item -LiteralPath $OutFile -Force }
    }
}

function Get-ChildText([System.Xml.XmlElement]$Element, [string]$Name, [string]$Namespace) {
    $found = $Element.GetElementsByTagName($Name, $Namespace)
    if ($found.Count -gt 0) { return $found[0].InnerText.Trim() }
    return ''
}

$os = Get-CimInstance -ClassName Win32_OperatingSystem -Property 'Caption', 'Version', 'BuildNumber', 'ProductType'

$auditCsv = $null
try {
    $auditCsv = Get-NativeFileText 'auditpol.exe' @('/backup', "/file:$tempBase-audit.csv") "$tempBase-audit.csv"
} catch { $errors['AuditPolicy'] = $_.Exception.Message }

$securityTemplate = $null
try {
    $text = Get-NativeFileText 'secedit.exe' @('/export', '/areas', 'SECURITYPOLICY', '/cfg', "$tempBase.inf", '/quiet') "$tempBase.inf"
    $keep = $false
    $lines = foreach ($line in ($text -split "`r?`n")) {
        if ($line -match '^\s*\[(.+)\]\s*$') { $keep = @('Unicode', 'Event Audit', 'Version') -contains $Matches[1] }
        if ($keep) { $line }
    }
    $securityTemplate = @($lines) -join "`r`n"
} catch { $errors['SecurityTemplate'] = $_.Exception.Message }

$registry = foreach ($entry in @(
        'SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\Audit|ProcessCreationIncludeCmdLine_Enabled',
        'SYSTEM\CurrentControlSet\Control\Lsa|SCENoApplyLegacyAuditPolicy',
        'SOFTWARE\Policies\Microsoft\Windows\EventLog\Security|MaxSize',
        'SOFTWARE\Policies\Microsoft\Windows\EventLog\Security|Retention')) {
    $path, $name = $entry.Split('|')
    $value = $null
    $kind = $null
    $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey($path)
    if ($key) {
        $value = $key.GetValue($name)
        if ($null -ne $value) { $kind = $key.GetValueKind($name).ToString() }
        $key.Close()
    }
    [pscustomobject]@{ Key = "HKLM\$path"; Name = $name; Value = $value; Kind = $kind }
}

$channel = $null
try {
    $run = Invoke-Native 'wevtutil.exe' @('gl', 'Security')
    if ($run.ExitCode -ne 0) { throw "wevtutil.exe exited with code $($run.ExitCode): $($run.Output)" }
    $channel = $run.Output
} catch { $errors['SecurityChannel'] = $_.Exception.Message }

$securityLog = $null
try {
    $log = Get-WinEvent -ListLog 'Security'
    $oldest = Get-WinEvent -LogName 'Security' -MaxEvents 1 -Oldest
    $securityLog = [pscustomobject]@{
        FileSize           = $log.FileSize
        RecordCount        = $log.RecordCount
        MaximumSizeInBytes = $log.MaximumSizeInBytes
        LogMode            = $log.LogMode.ToString()
        IsLogFull          = $log.IsLogFull
        OldestRecordTime   = $oldest.TimeCreated.ToUniversalTime().ToString('o')
    }
} catch { $errors['SecurityLog'] = $_.Exception.Message }

# Get-LocalGroupMember is missing before Windows 10 / 2016 and fails on DCs: then the WinNT provider.
$readers = $null
try {
    $members = @(Get-LocalGroupMember -SID 'S-1-5-32-573' | Select-Object -Property @{ n = 'Sid'; e = { $_.SID.Value } }, 'Name')
    $readers = [pscustomobject]@{ Method = 'Get-LocalGroupMember'; Members = $members }
} catch {
    try {
        $groupSid = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-32-573')
        $groupName = $groupSid.Translate([System.Security.Principal.NTAccount]).Value.Split('\')[-1]
        $group = [ADSI]"WinNT://$env:COMPUTERNAME/$groupName,group"
        $members = @($group.Invoke('Members') | Select-Object -Property @(
                @{ n = 'Sid'; e = { (New-Object System.Security.Principal.SecurityIdentifier($_.GetType().InvokeMember('objectSid', 'GetProperty', $null, $_, $null), 0)).Value } },
                @{ n = 'Name'; e = { $_.GetType().InvokeMember('Name', 'GetProperty', $null, $_, $null) } }))
        $readers = [pscustomobject]@{ Method = 'WinNT'; Members = $members }
    } catch { $errors['EventLogReaders'] = $_.Exception.Message }
}

$hotfixes = $null
if ($os.Version -like '6.1.*' -or $os.Version -like '6.2.*') {
    try {
        $hotfixes = @(Get-CimInstance -ClassName Win32_QuickFixEngineering -Property 'HotFixID' | Select-Object -ExpandProperty 'HotFixID')
    } catch { $errors['HotFixes'] = $_.Exception.Message }
}

$events = $null
try {
    $query = "*[System[(EventID=4688) and TimeCreated[timediff(@SystemTime) <= $([long]$WindowHours * 3600000)]]]"
    $records = @()
    try {
        $records = @(Get-WinEvent -LogName 'Security' -FilterXPath $query -MaxEvents $MaxEvents)
    } catch {
        if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { throw }
    }
    $withCommandLine = 0
    foreach ($record in $records) {
        # CommandLine: 9th field of 4688 versions 1 and 2; version 0 has none.
        if ($record.Properties.Count -ge 9 -and ([string]$record.Properties[8].Value).Trim()) { $withCommandLine++ }
    }
    $events = [pscustomobject]@{
        WindowHours     = $WindowHours
        MaxEvents       = $MaxEvents
        Sampled         = $records.Count
        WithCommandLine = $withCommandLine
        NewestTime      = $(if ($records.Count) { $records[0].TimeCreated.ToUniversalTime().ToString('o') } else { $null })
        OldestTime      = $(if ($records.Count) { $records[-1].TimeCreated.ToUniversalTime().ToString('o') } else { $null })
    }
} catch { $errors['Events4688'] = $_.Exception.Message }

$service = Get-CimInstance -ClassName Win32_Service -Filter "Name='HealthService'" -Property 'State', 'StartMode'
$healthService = $null
if ($service) { $healthService = [pscustomobject]@{ State = [string]$service.State; StartMode = [string]$service.StartMode } }
$managementGroups = @()
$groupsKey = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey('SYSTEM\CurrentControlSet\Services\HealthService\Parameters\Management Groups')
if ($groupsKey) {
    $managementGroups = @($groupsKey.GetSubKeyNames())
    $groupsKey.Close()
}

# gpresult /x trimmed to the settings procaudit reads and the GPOs that set them.
$gpResult = $null
try {
    $doc = New-Object System.Xml.XmlDocument
    $doc.LoadXml((Get-NativeFileText 'gpresult.exe' @('/scope', 'computer', '/x', "$tempBase-rsop.xml", '/f') "$tempBase-rsop.xml"))
    $gp = 'http://www.microsoft.com/GroupPolicy/Settings/'
    $drop = "/*/*[local-name()!='ComputerResults'] | /*/*/*[local-name()!='GPO' and local-name()!='ExtensionData']" +
        " | /*/*/*[local-name()='GPO']/*[local-name()!='Name' and local-name()!='Path']"
    foreach ($node in @($doc.SelectNodes($drop))) { $null = $node.ParentNode.RemoveChild($node) }
    foreach ($setting in @($doc.SelectNodes("/*/*/*[local-name()='ExtensionData']/*[local-name()='Extension']/*"))) {
        $ns = $setting.NamespaceURI
        $keep = switch ($setting.LocalName) {
            'AuditSetting' { $ns -eq "${gp}Auditing" -and (Get-ChildText $setting 'SubcategoryGuid' $ns) -eq '{0cce922b-69ae-11d9-bed3-505054503030}' }
            'Audit' { $ns -eq "${gp}Security" }
            'SecurityOptions' { $ns -eq "${gp}Security" -and (Get-ChildText $setting 'KeyName' $ns) -like '*\SCENoApplyLegacyAuditPolicy' }
            'RegistrySetting' { $ns -eq "${gp}Registry" -and (Get-ChildText $setting 'KeyPath' $ns) -match '\\(Policies\\System\\Audit|EventLog\\Security)$' }
            'Policy' { $ns -eq "${gp}Registry" -and $PolicyNames -contains (Get-ChildText $setting 'Name' $ns) }
            default { $false }
        }
        if (-not $keep) {
            $null = $setting.ParentNode.RemoveChild($setting)
            continue
        }
        foreach ($part in @($setting.SelectNodes("*[local-name()='Explain' or local-name()='Supported']"))) { $null = $setting.RemoveChild($part) }
    }
    foreach ($node in @($doc.SelectNodes("/*/*/*[local-name()='ExtensionData'][not(*[local-name()='Extension']/*)]"))) {
        $null = $node.ParentNode.RemoveChild($node)
    }
    $used = @{}
    foreach ($id in @($doc.SelectNodes("/*/*/*[local-name()='ExtensionData']/*/*/*[local-name()='GPO']/*[local-name()='Identifier']"))) {
        $used[$id.InnerText.Trim()] = $true
    }
    foreach ($node in @($doc.SelectNodes("/*/*/*[local-name()='GPO']"))) {
        if (-not $used.ContainsKey((Get-ChildText $node 'Identifier' 'http://www.microsoft.com/GroupPolicy/Types'))) {
            $null = $node.ParentNode.RemoveChild($node)
        }
    }
    $gpResult = $doc.OuterXml
} catch { $errors['GpResult'] = $_.Exception.Message }

[pscustomobject]@{
    ComputerName     = $env:COMPUTERNAME
    CollectedAt      = [DateTime]::UtcNow.ToString('o')
    PSVersion        = $PSVersionTable.PSVersion.ToString()
    OS               = [pscustomobject]@{ Caption = $os.Caption; Version = $os.Version; BuildNumber = $os.BuildNumber; ProductType = [int]$os.ProductType }
    HotFixIds        = $hotfixes
    AuditPolicyCsv   = $auditCsv
    SecurityTemplate = $securityTemplate
    Registry         = @($registry)
    SecurityChannel  = $channel
    SecurityLog      = $securityLog
    EventLogReaders  = $readers
    Events4688       = $events
    HealthService    = $healthService
    ManagementGroups = $managementGroups
    GpResultXml      = $gpResult
    Errors           = $errors
} | ConvertTo-Json -Compress -Depth 5
