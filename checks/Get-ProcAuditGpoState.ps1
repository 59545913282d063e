<#
.SYNOPSIS
    Read what the procaudit GPO deployment needs to know from a domain controller, changing nothing.

.DESCRIPTION
    Read-only; runs on a domain controller (GroupPolicy and ActiveDirectory modules). Returns the domain,
    the GPO named GpoName if it exists (its id, versions, its permissions with each trustee's SID - Authenticated
    Users is S-1-5-11 in every language - and its payload files as base64: registry.pol, audit.csv,
    GptTmpl.inf), the GPO links of each Target, and whether each group and computer account exists (with the
    groups' members). The payload files are read from the PDC emulator's SYSVOL; a file that cannot be read for
    another reason than being absent stops the script with the real error. procaudit compares the GPO's payload
    with the one it would import: the same settings mean no import.

.PARAMETER GpoName
    Display name of the procaudit GPO.

.PARAMETER GroupName
    AD groups to look up (the per-wave security filtering groups).

.PARAMETER Target
    Distinguished names of the OUs (or the domain) the GPO is, or will be, linked to.

.PARAMETER Computer
    Computer accounts (sAMAccountName, NAME$) to look up.

.OUTPUTS
    One JSON document; procaudit.rollout.gpo.GpoStateResult describes it.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][ValidateLength(1, 255)][string]$GpoName,
    [string[]]$GroupName = @(),
    [string[]]$Target = @(),
    [string[]]$Computer = @()
)

$ErrorActionPreference = 'Stop'

$domain = Get-ADDomain
$dnsRoot = $domain.DNSRoot
$pdc = $domain.PDCEmulator

$gpo = $null
$found = @(Get-GPO -All -Domain $dnsRoot | Where-Object { $_.DisplayName -eq $GpoName })
if ($found.Count -gt 1) { throw "$($found.Count) GPOs are named '$GpoName'; rename all but one" }
if ($found.Count -eq 1) {
    $current = $found[0]
    # SYSVOL of the PDC emulator: the GroupPolicy cmdlets write there, and another DC may not have replicated yet.
    $machine = "\\$pdc\SYSVOL\$dnsRoot\Policies\{$($current.Id)}\Machine"
    $files = foreach ($relative in @('registry.pol', 'microsoft\windows nt\Audit\audit.csv', 'microsoft\windows nt\SecEdit\GptTmpl.inf')) {
        $path = Join-Path $machine $relative
        $bytes = $null
        try {
            $bytes = [System.IO.File]::ReadAllBytes($path)
        } catch [System.IO.FileNotFoundException], [System.IO.DirectoryNotFoundException] {
            $bytes = $null  # the GPO sets nothing of that kind; any other error (access denied ...) stops the script
        }
        if ($null -ne $bytes) {
            [pscustomobject]@{ RelativePath = $relative; ContentBase64 = [Convert]::ToBase64String($bytes) }
        }
    }
    $permissions = @(Get-GPPermission -Guid $current.Id -All -DomainName $dnsRoot | Select-Object -Property @(
            @{ n = 'Trustee'; e = { $_.Trustee.Name } },
            @{ n = 'TrusteeSid'; e = { if ($_.Trustee.Sid) { $_.Trustee.Sid.Value } else { $null } } },
            @{ n = 'TrusteeType'; e = { $_.Trustee.SidType.ToString() } },
            @{ n = 'Permission'; e = { $_.Permission.ToString() } },
            @{ n = 'Inherited'; e = { [bool]$_.Inherited } }))
    $gpo = [pscustomobject]@{
        Id                = $current.Id.ToString()
        DisplayName       = $current.DisplayName
        ComputerDSVersion = [int]$current.Computer.DSVersion
        ComputerSysvolVersion = [int]$current.Computer.SysvolVersion
        Files             = @($files)
        Permissions       = $permissions
    }
}

$targets = foreach ($dn in $Target) {
    $exists = $true
    try {
        $null = Get-ADObject -Identity $dn
    } catch [Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException] {
        $exists = $false
    }
    $links = @()
    if ($exists) {
        $links = @((Get-GPInheritance -Target $dn -Domain $dnsRoot).GpoLinks | Select-Object -Property @(
                @{ n = 'GpoId'; e = { $_.GpoId.ToString() } },
                'DisplayName',
                @{ n = 'Enabled'; e = { [bool]$_.Enabled } },
                @{ n = 'Enforced'; e = { [bool]$_.Enforced } },
                'Order'))
    }
    [pscustomobject]@{ Target = $dn; Exists = $exists; Links = $links }
}

$groups = foreach ($name in $GroupName) {
    try {
        $group = Get-ADGroup -Identity $name
        $members = @(Get-ADGroupMember -Identity $group | Select-Object -ExpandProperty 'SamAccountName')
        [pscustomobject]@{ Name = $name; Exists = $true; DistinguishedName = $group.DistinguishedName; Members = $members }
    } catch [Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException] {
        [pscustomobject]@{ Name = $name; Exists = $false; DistinguishedName = $null; Members = @() }
    }
}

$computers = foreach ($name in $Computer) {
    try {
        $account = Get-ADComputer -Identity $name
        [pscustomobject]@{ Name = $name; Exists = $true; DistinguishedName = $account.DistinguishedName }
    } catch [Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException] {
        [pscustomobject]@{ Name = $name; Exists = $false; DistinguishedName = $null }
    }
}

[pscustomobject]@{
    Domain    = [pscustomobject]@{ DnsRoot = $dnsRoot; DistinguishedName = $domain.DistinguishedName }
    Gpo       = $gpo
    Targets   = @($targets)
    Groups    = @($groups)
    Computers = @($computers)
} | ConvertTo-Json -Compress -Depth 6
