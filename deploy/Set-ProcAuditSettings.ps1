<#
.SYNOPSIS
    Apply procaudit's audit settings on this host, in the order given, and return what they are afterwards.

.DESCRIPTION
    Each Item/Value pair is one change, applied in order:
      Subcategory:{GUID}      auditpol /set /subcategory:{GUID} with Value 0 none, 1 success, 2 failure, 3 both
                              (by GUID: works in every display language).
      Registry:<Name>         a REG_DWORD 0 or 1, or -1 to delete the value (a rollback of a value that did not
                              exist). Only two values can be written, each at its fixed key:
                              SCENoApplyLegacyAuditPolicy (HKLM\SYSTEM\CurrentControlSet\Control\Lsa) and
                              ProcessCreationIncludeCmdLine_Enabled
                              (HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\Audit).
      SecurityLogMaxSizeKB    wevtutil sl Security /ms:<Value * 1024>.
    Nothing else is changed. With -WhatIf nothing is changed at all. The first failure stops the script; the
    changes before it stay applied (procaudit re-reads the host and converges on the next run).
    Afterwards it returns raw material for procaudit to verify: auditpol /backup, the two registry values and
    wevtutil gl Security.

.PARAMETER Item
    What to change, one entry per change (see above).

.PARAMETER Value
    The value for the Item at the same position.

.OUTPUTS
    One JSON document; procaudit.rollout.direct.SettingsResult describes it.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^(Subcategory:\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}|Registry:(SCENoApplyLegacyAuditPolicy|ProcessCreationIncludeCmdLine_Enabled)|SecurityLogMaxSizeKB)$')]
    [string[]]$Item,
    [Parameter(Mandatory = $true)]
    [ValidateRange(-1, 2147483647)]
    [int[]]$Value
)

$ErrorActionPreference = 'Stop'
$system32 = [Environment]::SystemDirectory
$ownedKeys = @{
    'SCENoApplyLegacyAuditPolicy'           = 'SYSTEM\CurrentControlSet\Control\Lsa'
    'ProcessCreationIncludeCmdLine_Enabled' = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\Audit'
}
if ($Item.Count -ne $Value.Count) {
    throw "Item and Value must pair up: $($Item.Count) items, $($Value.Count) values"
}

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

function Invoke-NativeChecked([string]$Exe, [string[]]$Arguments) {
    $run = Invoke-Native $Exe $Arguments
    if ($run.ExitCode -ne 0) {
        throw ("{0} {1} exited with code {2}; {3}" -f $Exe, ($Arguments -join ' '), $run.ExitCode, $run.Output)
    }
    return $run.Output
}

$applied = @()
for ($i = 0; $i -lt $Item.Count; $i++) {
    $parts = $Item[$i].Split(':', 2)
    $number = $Value[$i]
    if ($parts[0] -eq 'Subcategory') {
        if ($number -lt 0 -or $number -gt 3) { throw "$($Item[$i]) takes 0 to 3, not $number" }
        $success = 'disable'
        $failure = 'disable'
        if ($number -band 1) { $success = 'enable' }
        if ($number -band 2) { $failure = 'enable' }
        if ($PSCmdlet.ShouldProcess("audit subcategory $($parts[1])", "auditpol /set /success:$success /failure:$failure")) {
            $null = Invoke-NativeChecked 'auditpol.exe' @("/set", "/subcategory:$($parts[1])", "/success:$success", "/failure:$failure")
            $applied += $Item[$i]
        }
    } elseif ($parts[0] -eq 'Registry') {
        $name = $parts[1]
        $path = $ownedKeys[$name]
        if ($number -lt -1 -or $number -gt 1) { throw "$($Item[$i]) takes 0 or 1 (or -1 to delete), not $number" }
        if ($PSCmdlet.ShouldProcess("HKLM\$path\$name", "set to $number (-1 deletes)")) {
            $key = [Microsoft.Win32.Registry]::LocalMachine.CreateSubKey($path)
            try {
                if ($number -eq -1) {
                    $key.DeleteValue($name, $false)
                } else {
                    $key.SetValue($name, [int]$number, [Microsoft.Win32.RegistryValueKind]::DWord)
                }
            } finally { $key.Close() }
            $applied += $Item[$i]
        }
    } else {
        if ($number -lt 1024) { throw "SecurityLogMaxSizeKB must be at least 1024 (1 MB), not $number" }
        $bytes = [long]$number * 1024
        if ($PSCmdlet.ShouldProcess('Security event log', "set the maximum size to $bytes bytes")) {
            $null = Invoke-NativeChecked 'wevtutil.exe' @('sl', 'Security', "/ms:$bytes")
            $applied += $Item[$i]
        }
    }
}

$tempFile = Join-Path ([System.IO.Path]::GetTempPath()) ('procaudit-' + [guid]::NewGuid().ToString('N') + '-audit.csv')
try {
    $null = Invoke-NativeChecked 'auditpol.exe' @('/backup', "/file:$tempFile")
    $auditCsv = [System.IO.File]::ReadAllText($tempFile)
} finally {
    if (Test-Path -LiteralPath $tempFile) { Remove-Item -LiteralPath $tempFile -Force }
}

$registry = foreach ($name in @('ProcessCreationIncludeCmdLine_Enabled', 'SCENoApplyLegacyAuditPolicy')) {
    $path = $ownedKeys[$name]
    $data = $null
    $kind = $null
    $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey($path)
    if ($key) {
        $data = $key.GetValue($name)
        if ($null -ne $data) { $kind = $key.GetValueKind($name).ToString() }
        $key.Close()
    }
    [pscustomobject]@{ Key = "HKLM\$path"; Name = $name; Value = $data; Kind = $kind }
}

$channel = Invoke-NativeChecked 'wevtutil.exe' @('gl', 'Security')

[pscustomobject]@{
    ComputerName    = $env:COMPUTERNAME
    Applied         = @($applied)
    WhatIf          = [bool]$WhatIfPreference
    AuditPolicyCsv  = $auditCsv
    Registry        = @($registry)
    SecurityChannel = $channel
} | ConvertTo-Json -Compress -Depth 4
