<#
.SYNOPSIS
    Security filtering of the procaudit GPO: GpoApply for one AD group, Authenticated Users kept at Read.

.DESCRIPTION
    Runs on a domain controller (GroupPolicy and ActiveDirectory modules). Without -Remove: creates the
    security group GroupName when it does not exist (global, in GroupPath or the domain's default container),
    grants it GpoApply on the GPO, and sets Authenticated Users to AuthenticatedUsers. Authenticated Users
    is never removed: since MS16-072 computers read GPOs in their own context and need Read (GpoRead).
    With -Remove: removes the group's permission on the GPO and, with -RemoveGroup, deletes the group when it
    has no members left. With -EveryoneOnly: only sets Authenticated Users to AuthenticatedUsers (what a rollback
    restores); no group is looked up, created, granted or removed. Authenticated Users is found by its SID
    (S-1-5-11), so this works in every language.

.PARAMETER GpoName
    Display name of the GPO.

.PARAMETER GroupName
    The security group whose members apply the GPO. Required unless -EveryoneOnly.

.PARAMETER GroupPath
    Where to create the group (a container or OU distinguished name); empty for the domain's default.

.PARAMETER AuthenticatedUsers
    The permission Authenticated Users keep: GpoRead (filtering), GpoApply (everyone, the default of a new GPO),
    or None (no permission: what a rollback restores where Authenticated Users had none before).

.PARAMETER Remove
    Remove the group's permission instead of granting it.

.PARAMETER RemoveGroup
    With -Remove: also delete the group if it has no members.

.PARAMETER EveryoneOnly
    Set only the permission of Authenticated Users; GroupName, GroupPath, Remove and RemoveGroup must not be given.

.OUTPUTS
    One JSON document; procaudit.rollout.gpo.FilterResult describes it.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Mandatory = $true)][ValidateLength(1, 255)][string]$GpoName,
    [ValidatePattern('^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$')][string]$GroupName = '',
    [string]$GroupPath = '',
    [ValidateSet('GpoRead', 'GpoApply', 'None')][string]$AuthenticatedUsers = 'GpoRead',
    [switch]$Remove,
    [switch]$RemoveGroup,
    [switch]$EveryoneOnly
)

$ErrorActionPreference = 'Stop'
$everyoneSid = 'S-1-5-11'
$everyone = (New-Object System.Security.Principal.SecurityIdentifier($everyoneSid)).Translate([System.Security.Principal.NTAccount]).Value.Split('\')[-1]

function Get-Permissions([string]$Name) {
    return @(Get-GPPermission -Name $Name -All | Select-Object -Property @(
            @{ n = 'Trustee'; e = { $_.Trustee.Name } },
            @{ n = 'TrusteeSid'; e = { if ($_.Trustee.Sid) { $_.Trustee.Sid.Value } else { $null } } },
            @{ n = 'TrusteeType'; e = { $_.Trustee.SidType.ToString() } },
            @{ n = 'Permission'; e = { $_.Permission.ToString() } },
            @{ n = 'Inherited'; e = { [bool]$_.Inherited } }))
}

if ($EveryoneOnly) {
    if ($GroupName -or $GroupPath -or $Remove -or $RemoveGroup) {
        throw '-EveryoneOnly sets only Authenticated Users: GroupName, GroupPath, Remove and RemoveGroup do not go with it'
    }
} elseif (-not $GroupName) {
    throw 'GroupName is required unless -EveryoneOnly is given'
}

$before = Get-Permissions $GpoName
$group = $null
if (-not $EveryoneOnly) {
    try { $group = Get-ADGroup -Identity $GroupName } catch [Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException] { $group = $null }
}
$created = $false
$deleted = $false

if ($EveryoneOnly) {
    # Nothing but Authenticated Users, below.
} elseif (-not $Remove) {
    if ($null -eq $group -and $PSCmdlet.ShouldProcess("AD group $GroupName", 'create (global security group)')) {
        $arguments = @{
            Name          = $GroupName
            SamAccountName = $GroupName
            GroupCategory = 'Security'
            GroupScope    = 'Global'
            Description   = 'procaudit: computers that apply the process creation auditing GPO'
        }
        if ($GroupPath) { $arguments['Path'] = $GroupPath }
        New-ADGroup @arguments
        $created = $true
    }
    $current = @($before | Where-Object { $_.Trustee -eq $GroupName } | Select-Object -ExpandProperty 'Permission')
    if ($current -notcontains 'GpoApply' -and $PSCmdlet.ShouldProcess("GPO '$GpoName'", "grant GpoApply to $GroupName")) {
        $null = Set-GPPermission -Name $GpoName -TargetName $GroupName -TargetType Group -PermissionLevel GpoApply
    }
} else {
    $current = @($before | Where-Object { $_.Trustee -eq $GroupName })
    if ($current.Count -and $PSCmdlet.ShouldProcess("GPO '$GpoName'", "remove the permissions of $GroupName")) {
        $null = Set-GPPermission -Name $GpoName -TargetName $GroupName -TargetType Group -PermissionLevel None -Replace
    }
    if ($RemoveGroup -and $null -ne $group) {
        $members = @(Get-ADGroupMember -Identity $group)
        if ($members.Count -eq 0 -and $PSCmdlet.ShouldProcess("AD group $GroupName", 'delete (it has no members)')) {
            Remove-ADGroup -Identity $group -Confirm:$false
            $deleted = $true
        }
    }
}

$everyoneNow = @($before | Where-Object { $_.TrusteeSid -eq $everyoneSid } | Select-Object -ExpandProperty 'Permission')
$everyoneChange = if ($AuthenticatedUsers -eq 'None') { $everyoneNow.Count -gt 0 } else { $everyoneNow -notcontains $AuthenticatedUsers }
if ($everyoneChange -and $PSCmdlet.ShouldProcess("GPO '$GpoName'", "set $everyone to $AuthenticatedUsers")) {
    $null = Set-GPPermission -Name $GpoName -TargetName $everyone -TargetType Group -PermissionLevel $AuthenticatedUsers -Replace
}

[pscustomobject]@{
    GroupFound   = ($null -ne $group)
    GroupCreated = $created
    GroupDeleted = $deleted
    Before       = $before
    After        = Get-Permissions $GpoName
} | ConvertTo-Json -Compress -Depth 4
