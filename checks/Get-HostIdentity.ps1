<#
.SYNOPSIS
    Identify the host: computer name, PowerShell version, operating system caption, version and build.

.DESCRIPTION
    Read-only. 'procaudit ping' runs it to prove that WinRM, authentication and PowerShell all work.
    Uses only locale-independent fields except the OS caption, which is shown to people, never parsed.

.OUTPUTS
    One JSON document: ComputerName, PSVersion, OSCaption, OSVersion, OSBuild, ProductType.
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'

$os = Get-CimInstance -ClassName Win32_OperatingSystem -Property 'Caption', 'Version', 'BuildNumber', 'ProductType'

[pscustomobject]@{
    ComputerName = $env:COMPUTERNAME
    PSVersion    = $PSVersionTable.PSVersion.ToString()
    OSCaption    = $os.Caption
    OSVersion    = $os.Version
    OSBuild      = $os.BuildNumber
    ProductType  = [int]$os.ProductType
} | ConvertTo-Json -Compress -Depth 2
