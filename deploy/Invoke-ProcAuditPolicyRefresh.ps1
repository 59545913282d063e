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

if ($PSCmdlet.ShouldProcess($env:COMPUTERNAME, 'purge the computer Kerberos tickets and refresh computer policy')) {
    $klistOutput = @(& (Join-Path $system32 'klist.exe') '-li' '0x3e7' 'purge' 2>&1) -join "`n"
    $klistCode = $LASTEXITCODE
    $gpupdateOutput = @(& (Join-Path $system32 'gpupdate.exe') '/target:computer' '/force' 2>&1) -join "`n"
    $gpupdateCode = $LASTEXITCODE
    if ($gpupdateCode -ne 0) { throw "gpupdate.exe exited with code $gpupdateCode; $gpupdateOutput" }
}

[pscustomobject]@{
    ComputerName     = $env:COMPUTERNAME
    KlistExitCode    = $klistCode
    KlistOutput      = $klistOutput
    GpupdateExitCode = $gpupdateCode
    GpupdateOutput   = $gpupdateOutput
    WhatIf           = [bool]$WhatIfPreference
} | ConvertTo-Json -Compress -Depth 2
