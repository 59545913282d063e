<#
.SYNOPSIS
    Make this computer apply its Group Policy now, with its current AD group memberships.

.DESCRIPTION
    Purges the computer account's Kerberos tickets (klist -li 0x3e7 purge), so the next ticket carries the
    groups the computer was just added to or removed from, then refreshes computer policy
    (gpupdate /target:computer /force). Without this a new membership counts only after a reboot, and a
    policy change only at the next background refresh (90 minutes plus up to 30; 5 minutes on DCs).
    With -WhatIf nothing is run.

.OUTPUTS
    One JSON document; procaudit.rollout.gpo.RefreshResult describes it.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param()

$ErrorActionPreference = 'Stop'
$system32 = [Environment]::SystemDirectory
$klistCode = $null
$klistOutput = $null
$gpupdateCode = $null
$gpupdateOutput = $null

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

if ($PSCmdlet.ShouldProcess($env:COMPUTERNAME, 'purge the computer Kerberos tickets and refresh computer policy')) {
    $klist = Invoke-Native 'klist.exe' @('-li', '0x3e7', 'purge')
    $klistCode = $klist.ExitCode
    $klistOutput = $klist.Output
    $gpupdate = Invoke-Native 'gpupdate.exe' @('/target:computer', '/force')
    $gpupdateCode = $gpupdate.ExitCode
    $gpupdateOutput = $gpupdate.Output
    if ($gpupdateCode -ne 0) { throw "gpupdate.exe failed (exit code $gpupdateCode): $gpupdateOutput" }
}

[pscustomobject]@{
    ComputerName     = $env:COMPUTERNAME
    KlistExitCode    = $klistCode
    KlistOutput      = $klistOutput
    GpupdateExitCode = $gpupdateCode
    GpupdateOutput   = $gpupdateOutput
    WhatIf           = [bool]$WhatIfPreference
} | ConvertTo-Json -Compress -Depth 2
