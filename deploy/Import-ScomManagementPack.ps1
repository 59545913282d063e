<#
.SYNOPSIS
    Import a management pack file from procaudit's staging folder into the local management group and report
    the version installed afterwards.

.DESCRIPTION
    Run on a SCOM management server. Checks the staged file's SHA-256 again, then runs
    Import-SCOMManagementPack -Fullname on it (unless -WhatIf) and reads the installed version back with
    Get-SCOMManagementPack. When the management group refuses the import (validation, a missing or too old
    reference, a version that is not newer), the refusal is returned in Refusal instead of failing the script,
    so the caller can tell "refused" from "could not run".

.PARAMETER FileName
    The file's name in %ProgramData%\procaudit\staging (as Copy-ProcauditFile saved it).

.PARAMETER Sha256
    Expected SHA-256 of the staged file.

.PARAMETER Name
    The management pack ID the file holds.

.PARAMETER Version
    The version the file holds (a.b.c.d).

.OUTPUTS
    One JSON document: Name, Path, PreviousVersion, InstalledVersion, Imported, Refusal.
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)]
    [ValidatePattern('^[A-Za-z0-9_.-]{1,200}$')]
    [string]$FileName,

    [Parameter(Mandatory)]
    [ValidatePattern('^[0-9a-fA-F]{64}$')]
    [string]$Sha256,

    [Parameter(Mandatory)]
    [ValidatePattern('^[A-Za-z0-9_.]{1,256}$')]
    [string]$Name,

    [Parameter(Mandatory)]
    [ValidatePattern('^[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}$')]
    [string]$Version
)

$ErrorActionPreference = 'Stop'

$path = Join-Path -Path (Join-Path -Path $env:ProgramData -ChildPath 'procaudit\staging') -ChildPath $FileName
$sha = [System.Security.Cryptography.SHA256]::Create()
$actual = ([System.BitConverter]::ToString($sha.ComputeHash([System.IO.File]::ReadAllBytes($path)))).Replace('-', '').ToLowerInvariant()
if ($actual -ne $Sha256.ToLowerInvariant()) {
    throw "Import-ScomManagementPack: $path is not the file procaudit staged (SHA-256 $actual); nothing was imported"
}

Import-Module -Name 'OperationsManager'
New-SCOMManagementGroupConnection -ComputerName 'localhost'

$before = Get-SCOMManagementPack -Name $Name
$previous = $null
if ($before) {
    $previous = $before.Version.ToString()
}

$imported = $false
$refusal = $null
if ($PSCmdlet.ShouldProcess("$Name $Version", 'Import-SCOMManagementPack')) {
    try {
        Import-SCOMManagementPack -Fullname $path
        $imported = $true
    }
    catch {
        $refusal = $_.Exception.Message
    }
}

$after = Get-SCOMManagementPack -Name $Name
$installed = $null
if ($after) {
    $installed = $after.Version.ToString()
}

[pscustomobject]@{
    Name             = $Name
    Path             = $path
    PreviousVersion  = $previous
    InstalledVersion = $installed
    Imported         = $imported
    Refusal          = $refusal
} | ConvertTo-Json -Compress -Depth 2
