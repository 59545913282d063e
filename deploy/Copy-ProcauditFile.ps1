<#
.SYNOPSIS
    Receive a file as Base64 chunks on the pipeline, check its length and SHA-256, and save it in procaudit's
    staging folder.

.DESCRIPTION
    PowerShell Remoting only, no SMB: procaudit sends the file as pipeline input, in chunks small enough for any
    WinRM MaxEnvelopeSizekb, and binds the expected length and SHA-256 as parameters. The file is written to
    %ProgramData%\procaudit\staging\<Name> only when both match, replacing an earlier copy. The name may not
    contain a path. With -WhatIf the content is received and checked but not written.

.PARAMETER Name
    File name inside the staging folder (letters, digits, '.', '_', '-').

.PARAMETER Sha256
    Expected SHA-256 of the content, 64 hexadecimal characters.

.PARAMETER Length
    Expected length in bytes.

.PARAMETER Chunk
    One Base64 chunk of the content (pipeline input; each chunk decodes on its own).

.OUTPUTS
    One JSON document: Path, Length, Sha256, Written.
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)]
    [ValidatePattern('^[A-Za-z0-9_.-]{1,200}$')]
    [string]$Name,

    [Parameter(Mandatory)]
    [ValidatePattern('^[0-9a-fA-F]{64}$')]
    [string]$Sha256,

    [Parameter(Mandatory)]
    [ValidateRange(0, 67108864)]
    [long]$Length,

    [Parameter(Mandatory, ValueFromPipeline)]
    [AllowEmptyString()]
    [string]$Chunk
)

begin {
    $ErrorActionPreference = 'Stop'
    $buffer = New-Object -TypeName 'System.IO.MemoryStream'
}

process {
    $bytes = [System.Convert]::FromBase64String($Chunk)
    $buffer.Write($bytes, 0, $bytes.Length)
    if ($buffer.Length -gt $Length) {
        throw "Copy-ProcauditFile: received more than the announced $Length bytes for $Name"
    }
}

end {
    $data = $buffer.ToArray()
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $actual = ([System.BitConverter]::ToString($sha.ComputeHash($data))).Replace('-', '').ToLowerInvariant()
    if ($data.Length -ne $Length -or $actual -ne $Sha256.ToLowerInvariant()) {
        throw "Copy-ProcauditFile: $Name arrived damaged ($($data.Length) of $Length bytes, SHA-256 $actual); nothing was written"
    }
    $folder = Join-Path -Path $env:ProgramData -ChildPath 'procaudit\staging'
    $path = Join-Path -Path $folder -ChildPath $Name
    $written = $false
    if ($PSCmdlet.ShouldProcess($path, 'Write file')) {
        New-Item -ItemType Directory -Path $folder -Force | Out-Null
        [System.IO.File]::WriteAllBytes($path, $data)
        $written = $true
    }
    [pscustomobject]@{
        Path    = $path
        Length  = $data.Length
        Sha256  = $actual
        Written = $written
    } | ConvertTo-Json -Compress -Depth 2
}
