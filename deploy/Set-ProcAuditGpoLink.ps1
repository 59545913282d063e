<#
.SYNOPSIS
    Link the procaudit GPO to OUs (enabled), or remove or disable those links.

.DESCRIPTION
    Runs on a domain controller (GroupPolicy module). For each Target: without -Remove, creates an enabled
    link when there is none and enables a disabled one; an existing enabled link is left as it is. With
    -Remove, removes the link when there is one; with -Disable, disables an enabled link (what a rollback does
    where the link was disabled before procaudit enabled it). Returns each target's link state before and after:
    absent, enabled or disabled. Links go last in a target's link order (New-GPLink's default).

.PARAMETER GpoName
    Display name of the GPO.

.PARAMETER Target
    Distinguished names of the OUs (or the domain) to link.

.PARAMETER Remove
    Remove the links instead.

.PARAMETER Disable
    Disable the links instead (they stay in place).

.OUTPUTS
    One JSON document; procaudit.rollout.gpo.LinkResult describes it.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Mandatory = $true)][ValidateLength(1, 255)][string]$GpoName,
    [Parameter(Mandatory = $true)][ValidatePattern('^(OU|DC)=')][string[]]$Target,
    [switch]$Remove,
    [switch]$Disable
)

$ErrorActionPreference = 'Stop'

function Get-LinkState([string]$Dn) {
    $link = @((Get-GPInheritance -Target $Dn).GpoLinks | Where-Object { $_.DisplayName -eq $GpoName })
    if ($link.Count -eq 0) { return 'absent' }
    if ($link[0].Enabled) { return 'enabled' }
    return 'disabled'
}

$links = foreach ($dn in $Target) {
    $before = Get-LinkState $dn
    if ($Remove) {
        if ($before -ne 'absent' -and $PSCmdlet.ShouldProcess($dn, "remove the link of GPO '$GpoName'")) {
            $null = Remove-GPLink -Name $GpoName -Target $dn
        }
    } elseif ($Disable) {
        if ($before -eq 'enabled' -and $PSCmdlet.ShouldProcess($dn, "disable the link of GPO '$GpoName'")) {
            $null = Set-GPLink -Name $GpoName -Target $dn -LinkEnabled No
        }
    } elseif ($before -eq 'absent') {
        if ($PSCmdlet.ShouldProcess($dn, "link GPO '$GpoName' (enabled)")) {
            $null = New-GPLink -Name $GpoName -Target $dn -LinkEnabled Yes
        }
    } elseif ($before -eq 'disabled') {
        if ($PSCmdlet.ShouldProcess($dn, "enable the link of GPO '$GpoName'")) {
            $null = Set-GPLink -Name $GpoName -Target $dn -LinkEnabled Yes
        }
    }
    [pscustomobject]@{ Target = $dn; Before = $before; After = (Get-LinkState $dn) }
}

[pscustomobject]@{ Links = @($links) } | ConvertTo-Json -Compress -Depth 4
