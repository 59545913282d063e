<#
.SYNOPSIS
    Report the installed version of a management pack and export it as a backup on the management server.

.DESCRIPTION
    Run on a SCOM management server (the Operations Manager shell module must be installed there). Connects to
    the local management group, looks the management pack up by its ID and, unless -WhatIf is given, exports it
    with Export-SCOMManagementPack into a new time-stamped folder under
    %ProgramData%\procaudit\mp-backup. The exported file is also returned (Base64, with its SHA-256) so that
    'procaudit mp push' keeps a copy beside the operator. Nothing else is changed.

.PARAMETER Name
    The management pack ID, e.g. Procaudit.ProcessCreation.Detections.

.OUTPUTS
    One JSON document: Name, Installed, Version, Sealed, DisplayName, ManagementGroup, BackupPath,
    ContentBase64, Sha256.
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)]
    [ValidatePattern('^[A-Za-z0-9_.]{1,256}$')]
    [string]$Name
)

$ErrorActionPreference = 'Stop'

Import-Module -Name 'OperationsManager'
New-SCOMManagementGroupConnection -ComputerName 'localhost'
$group = Get-SCOMManagementGroup
$mp = Get-SCOMManagementPack -Name $Name

$result = [ordered]@{
    Name            = $Name
    Installed       = $false
    Version         = $null
    Sealed          = $null
    DisplayName     = $null
    ManagementGroup = $group.Name
    BackupPath      = $null
    ContentBase64   = $null
    Sha256          = $null
}

if ($mp) {
    $result.Installed = $true
    $result.Version = $mp.Version.ToString()
    $result.Sealed = [bool]$mp.Sealed
    $result.DisplayName = $mp.DisplayName
    $stamp = (Get-Date).ToUniversalTime().ToString('yyyyMMddTHHmmssZ')
    $folder = Join-Path -Path (Join-Path -Path $env:ProgramData -ChildPath 'procaudit\mp-backup') -ChildPath $stamp
    if ($PSCmdlet.ShouldProcess("$Name $($result.Version)", "Export to $folder")) {
        New-Item -ItemType Directory -Path $folder -Force | Out-Null
        Export-SCOMManagementPack -ManagementPack $mp -Path $folder
        $file = Join-Path -Path $folder -ChildPath ($mp.Name + '.xml')
        $bytes = [System.IO.File]::ReadAllBytes($file)
        $sha = [System.Security.Cryptography.SHA256]::Create()
        $result.BackupPath = $file
        $result.ContentBase64 = [System.Convert]::ToBase64String($bytes)
        $result.Sha256 = ([System.BitConverter]::ToString($sha.ComputeHash($bytes))).Replace('-', '').ToLowerInvariant()
    }
}

[pscustomobject]$result | ConvertTo-Json -Compress -Depth 3
