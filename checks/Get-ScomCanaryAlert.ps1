<#
.SYNOPSIS
    Find the alerts that procaudit's canary rule raised for one verification run.

.DESCRIPTION
    Read-only. Run on a SCOM management server. Looks the canary rule up by its name (the rule's ID in the
    management pack) and returns the alerts of that rule whose description contains the run's nonce
    ('procaudit verify' starts a process whose command line carries procaudit-verify-<nonce>). Returns only
    what identifies an alert; the description itself (which holds a command line) is not returned.

.PARAMETER RuleName
    The canary rule's ID, e.g. Procaudit.ProcessCreation.Detections.Rule.ProcauditVerifyCanary.

.PARAMETER Nonce
    The verification run's nonce: 32 lower-case hexadecimal characters.

.OUTPUTS
    One JSON document: RuleName, RuleFound, RuleEnabled, Alerts (Id, Name, ComputerName, TimeRaised,
    ResolutionState, RepeatCount, Severity).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)]
    [ValidatePattern('^[A-Za-z0-9_.]{1,256}$')]
    [string]$RuleName,

    [Parameter(Mandatory)]
    [ValidatePattern('^[0-9a-f]{32}$')]
    [string]$Nonce
)

$ErrorActionPreference = 'Stop'

Import-Module -Name 'OperationsManager'
New-SCOMManagementGroupConnection -ComputerName 'localhost'

$rule = Get-SCOMRule -Name $RuleName
$alerts = @()
if ($rule) {
    $raised = @(Get-SCOMAlert -Criteria ("MonitoringRuleId = '" + $rule.Id.ToString() + "'"))
    foreach ($alert in $raised) {
        if ($alert.Description -and $alert.Description.Contains("procaudit-verify-$Nonce")) {
            $alerts += [pscustomobject]@{
                Id              = $alert.Id.ToString()
                Name            = $alert.Name
                ComputerName    = $alert.NetbiosComputerName
                TimeRaised      = $alert.TimeRaised.ToUniversalTime().ToString('o')
                ResolutionState = [int]$alert.ResolutionState
                RepeatCount     = [int]$alert.RepeatCount
                Severity        = $alert.Severity.ToString()
            }
        }
    }
}

[pscustomobject]@{
    RuleName    = $RuleName
    RuleFound   = [bool]$rule
    RuleEnabled = [bool]($rule -and $rule.Enabled -ne 'false')
    Alerts      = @($alerts)
} | ConvertTo-Json -Compress -Depth 4
