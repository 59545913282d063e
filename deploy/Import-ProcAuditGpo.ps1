<#
.SYNOPSIS
    Import the procaudit GPO on a domain controller from the backup files procaudit sends.

.DESCRIPTION
    Runs on a domain controller (GroupPolicy module). The backup files arrive as base64 parameters with
    their SHA-256; each is decoded, checked against its digest and written below a new private folder in
    the caller's temp directory, then Import-GPO -BackupId -Path -TargetName -CreateIfNeeded creates the
    GPO or overwrites the settings of the existing one of that name. The folder is removed afterwards.
    Importing does not link the GPO: nothing applies to any computer yet. With -WhatIf nothing is written.

.PARAMETER BackupId
    The backup's ID (the name of its folder, braced GUID).

.PARAMETER TargetName
    Display name of the GPO to create or overwrite.

.PARAMETER RelativePath
    Path of each file inside the backup folder.

.PARAMETER ContentBase64
    Content of the file at the same position, base64.

.PARAMETER Sha256
    SHA-256 (lower-case hex) of the file at the same position.

.OUTPUTS
    One JSON document; procaudit.rollout.gpo.ImportResult describes it.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$')]
    [string]$BackupId,
    [Parameter(Mandatory = $true)][ValidateLength(1, 255)][string]$TargetName,
    [Parameter(Mandatory = $true)]
    [ValidateSet('Backup.xml', 'bkupInfo.xml', 'DomainSysvol\GPO\Machine\registry.pol', 'DomainSysvol\GPO\Machine\microsoft\windows nt\Audit\audit.csv', 'DomainSysvol\GPO\Machine\microsoft\windows nt\SecEdit\GptTmpl.inf')]
    [string[]]$RelativePath,
    [Parameter(Mandatory = $true)][string[]]$ContentBase64,
    [Parameter(Mandatory = $true)][ValidatePattern('^[0-9a-f]{64}$')][string[]]$Sha256
)

$ErrorActionPreference = 'Stop'
if ($RelativePath.Count -ne $ContentBase64.Count -or $RelativePath.Count -ne $Sha256.Count) {
    throw "RelativePath, ContentBase64 and Sha256 must pair up: $($RelativePath.Count), $($ContentBase64.Count), $($Sha256.Count)"
}

$existing = @(Get-GPO -All | Where-Object { $_.DisplayName -eq $TargetName })
if ($existing.Count -gt 1) { throw "$($existing.Count) GPOs are named '$TargetName'; rename all but one" }

$imported = $null
if ($PSCmdlet.ShouldProcess("GPO '$TargetName'", "Import-GPO from backup $BackupId")) {
    $root = Join-Path ([System.IO.Path]::GetTempPath()) ('procaudit-gpo-' + [guid]::NewGuid().ToString('N'))
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try {
        $null = New-Item -ItemType Directory -Path $root
        for ($i = 0; $i -lt $RelativePath.Count; $i++) {
            $bytes = [Convert]::FromBase64String($ContentBase64[$i])
            $digest = [BitConverter]::ToString($sha.ComputeHash($bytes)).Replace('-', '').ToLowerInvariant()
            if ($digest -ne $Sha256[$i]) {
                throw "$($RelativePath[$i]) arrived with SHA-256 $digest, not $($Sha256[$i]); nothing was imported"
            }
            $path = Join-Path (Join-Path $root $BackupId) $RelativePath[$i]
            $null = New-Item -ItemType Directory -Path (Split-Path -Parent $path) -Force
            [System.IO.File]::WriteAllBytes($path, $bytes)
        }
        $gpo = Import-GPO -BackupId $BackupId -Path $root -TargetName $TargetName -CreateIfNeeded
        $imported = [pscustomobject]@{
            Id                = $gpo.Id.ToString()
            DisplayName       = $gpo.DisplayName
            ComputerDSVersion = [int]$gpo.Computer.DSVersion
            ModificationTime  = $gpo.ModificationTime.ToUniversalTime().ToString('o')
        }
    } finally {
        $sha.Dispose()
        if (Test-Path -LiteralPath $root) { Remove-Item -LiteralPath $root -Recurse -Force }
    }
}

[pscustomobject]@{
    Existed  = ($existing.Count -eq 1)
    Imported = ($null -ne $imported)
    Gpo      = $imported
} | ConvertTo-Json -Compress -Depth 4
