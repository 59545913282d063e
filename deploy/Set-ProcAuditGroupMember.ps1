<#
.SYNOPSIS
    Add computer accounts to the procaudit wave group, or remove them.

.DESCRIPTION
    Runs on a domain controller (ActiveDirectory module). Adds the Member computer accounts that are not in
    GroupName yet (or, with -Remove, removes those that are) and returns the members before and after. With
    -Remove, a group that does not exist (any more) is reported as Missing, with nothing to do.
    A computer sees a new membership only in a new Kerberos ticket: after a reboot, or after
    Invoke-ProcAuditPolicyRefresh purges its tickets.

.PARAMETER GroupName
    The security group.

.PARAMETER Member
    Computer accounts by sAMAccountName (NAME$).

.PARAMETER Remove
    Remove the members instead.

.OUTPUTS
    One JSON document; procaudit.rollout.gpo.MemberResult describes it.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Mandatory = $true)][ValidatePattern('^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$')][string]$GroupName,
    [Parameter(Mandatory = $true)][ValidatePattern('^[A-Za-z0-9][A-Za-z0-9._-]{0,14}\$$')][string[]]$Member,
    [switch]$Remove
)

$ErrorActionPreference = 'Stop'

# A rollback may meet a group someone deleted since: its memberships went with it, so -Remove has nothing to do.
$group = $null
try {
    $group = Get-ADGroup -Identity $GroupName
} catch [Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException] {
    if (-not $Remove) { throw }
}

$before = @()
$todo = @()
$after = @()
if ($null -ne $group) {
    $before = @(Get-ADGroupMember -Identity $group | Select-Object -ExpandProperty 'SamAccountName')
    if ($Remove) {
        $todo = @($Member | Where-Object { $before -contains $_ })
        if ($todo.Count -and $PSCmdlet.ShouldProcess("AD group $GroupName", "remove $($todo -join ', ')")) {
            Remove-ADGroupMember -Identity $group -Members $todo -Confirm:$false
        }
    } else {
        $todo = @($Member | Where-Object { $before -notcontains $_ })
        if ($todo.Count -and $PSCmdlet.ShouldProcess("AD group $GroupName", "add $($todo -join ', ')")) {
            Add-ADGroupMember -Identity $group -Members $todo
        }
    }
    $after = @(Get-ADGroupMember -Identity $group | Select-Object -ExpandProperty 'SamAccountName')
}

[pscustomobject]@{
    Group   = $GroupName
    Missing = ($null -eq $group)
    Before  = $before
    Changed = $todo
    After   = $after
} | ConvertTo-Json -Compress -Depth 3
