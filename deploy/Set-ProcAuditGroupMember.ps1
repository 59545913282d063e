<#
.SYNOPSIS
    Add computer accounts to the procaudit wave group, or remove them.

.DESCRIPTION
    Runs on a domain controller (ActiveDirectory module). Adds the Member computer accounts that are not in
    GroupName yet (or, with -Remove, removes those that are) and returns the members before and after.
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

$before = @(Get-ADGroupMember -Identity $GroupName | Select-Object -ExpandProperty 'SamAccountName')
if ($Remove) {
    $todo = @($Member | Where-Object { $before -contains $_ })
    if ($todo.Count -and $PSCmdlet.ShouldProcess("AD group $GroupName", "remove $($todo -join ', ')")) {
        Remove-ADGroupMember -Identity $GroupName -Members $todo -Confirm:$false
    }
} else {
    $todo = @($Member | Where-Object { $before -notcontains $_ })
    if ($todo.Count -and $PSCmdlet.ShouldProcess("AD group $GroupName", "add $($todo -join ', ')")) {
        Add-ADGroupMember -Identity $GroupName -Members $todo
    }
}

[pscustomobject]@{
    Group   = $GroupName
    Before  = $before
    Changed = $todo
    After   = @(Get-ADGroupMember -Identity $GroupName | Select-Object -ExpandProperty 'SamAccountName')
} | ConvertTo-Json -Compress -Depth 3
