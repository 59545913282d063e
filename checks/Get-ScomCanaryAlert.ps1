<#
.SYNOPSIS
    Find the alerts that procaudit's canary rule raised for one verification run.

.DESCRIPTION
    Read-only. Run on a SCOM management server. Looks the canary rule up by its name (the rule's ID in the
    management pack) and returns the alerts of that rule raised at or after -Since whose description contains the
    run's marker, procaudit-verify-<nonce>, compared case-sensitively ('procaudit verify' starts a process whose
    command line carries it). Returns only what identifies an alert; the description itself (which holds a command
    line) is not returned.

.PARAMETER RuleName
    The canary rule's ID, e.g. Procaudit.ProcessCreation.Detections.Rule.ProcauditVerifyCanary.

.PARAMETER Nonce
    The verification run's nonce: exactly 32 lower-case hexadecimal characters (checked case-sensitively).

.PARAMETER Since
    Optional. An ISO 8601 UTC time (e.g. 2026-11-27T21:40:00Z): only alerts raised at or after it count. procaudit
    passes the marker's start, less an allowance for clock skew between the host and the management server.

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
    [ValidatePattern('^[0-9a-f]{32}\z')]
    [string]$Nonce,

    [ValidatePattern('^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z$')]
    [string]$Since
)

$ErrorActionPreference = 'Stop'

# ValidatePattern ignores case; the marker is lower-case hex, so an upper-case nonce can never be this run's.
if ($Nonce -cnotmatch '^[0-9a-f]{32}\z') {
    throw "Nonce '$Nonce' is not 32 lower-case hexadecimal characters."
}
$notBefore = [datetime]::MinValue
if ($Since) {
    $styles = [Globalization.DateTimeStyles]::AdjustToUniversal -bor [Globalization.DateTimeStyles]::AssumeUniversal
    $notBefore = [datetime]::Parse($Since, [Globalization.CultureInfo]::InvariantCulture, $styles)
}
$marker = 'procaudit-verify-' + $Nonce

Import-Module -Name 'OperationsManager'
New-SCOMManagementGroupConnection -ComputerName 'localhost'

$rule = Get-SCOMRule -Name $RuleName
$alerts = @()
if ($rule) {
    $raised = @(Get-SCOMAlert -Criteria ("MonitoringRuleId = '" + $rule.Id.ToString() + "'"))
    foreach ($alert in $raised) {
        # The SDK gives alert times in UTC; one without a kind is UTC, not the management server's local time.
        $raisedAt = $alert.TimeRaised
        if ($raisedAt.Kind -eq [DateTimeKind]::Unspecified) {
            $raisedAt = [datetime]::SpecifyKind($raisedAt, [DateTimeKind]::Utc)
        }
        $raisedAt = $raisedAt.ToUniversalTime()
        if ($raisedAt -lt $notBefore) {
            continue
        }
        if ($alert.Description -and $alert.Description.IndexOf($marker, [StringComparison]::Ordinal) -ge 0) {
            $alerts += [pscustomobject]@{
                Id              = $alert.Id.ToString()
                Name            = $alert.Name
                ComputerName    = $alert.NetbiosComputerName
                TimeRaised      = $raisedAt.ToString('o')
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
