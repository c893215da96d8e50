# cuttle-exec PowerShell bootstrap (generated; do not edit). It reads the script's variables
# once from standard input into $OctopusParameters, defines Octopus' helper cmdlets, then
# dot-sources the script with its arguments.
$__cuttleScript = $args[0]
$__cuttleArguments = @($args | Select-Object -Skip 1)
$__cuttleJson = [Console]::In.ReadToEnd()
$OctopusParameters = New-Object 'System.Collections.Generic.Dictionary[String,String]' ([System.StringComparer]::OrdinalIgnoreCase)
if ($__cuttleJson.Trim()) {
    foreach ($__cuttleEntry in (ConvertFrom-Json -InputObject $__cuttleJson)) {
        $OctopusParameters[[string]$__cuttleEntry.Name] = [string]$__cuttleEntry.Value
    }
}
Remove-Variable -Name __cuttleJson, __cuttleEntry -ErrorAction SilentlyContinue

function Convert-ToServiceMessageParameter([string]$name, [string]$value) {
    $encoded = [Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($value))
    return "$name='$encoded'"
}

function Set-OctopusVariable([string]$name, [string]$value, [switch]$sensitive) {
    $message = "##octopus[setVariable $(Convert-ToServiceMessageParameter 'name' $name) $(Convert-ToServiceMessageParameter 'value' $value)"
    if ($sensitive) {
        $message += " $(Convert-ToServiceMessageParameter 'sensitive' 'True')"
    }
    Write-Host "$message]"
    $OctopusParameters[$name] = $value
}

function New-OctopusArtifact([string]$path, [string]$name) {
    if (-not (Test-Path -LiteralPath $path)) {
        throw "New-OctopusArtifact: '$path' does not exist"
    }
    $fullPath = (Resolve-Path -LiteralPath $path).ProviderPath
    if (-not $name) {
        $name = [System.IO.Path]::GetFileName($fullPath)
    }
    $length = [string](Get-Item -LiteralPath $fullPath).Length
    Write-Host "##octopus[stdout-verbose]"
    Write-Host "Artifact $name will be collected from $fullPath after this step completes"
    Write-Host "##octopus[stdout-default]"
    Write-Host "##octopus[createArtifact $(Convert-ToServiceMessageParameter 'path' $fullPath) $(Convert-ToServiceMessageParameter 'name' $name) $(Convert-ToServiceMessageParameter 'length' $length)]"
}

function Fail-Step([string]$message) {
    if ($message) {
        Write-Host "##octopus[resultMessage $(Convert-ToServiceMessageParameter 'message' $message)]"
    }
    exit 1
}

function Update-Progress([int]$percentage, [string]$message = "") {
    Write-Host "##octopus[progress $(Convert-ToServiceMessageParameter 'percentage' ([string]$percentage)) $(Convert-ToServiceMessageParameter 'message' $message)]"
}

function Write-Highlight([string]$message) {
    Write-Host "##octopus[stdout-highlight]"
    Write-Host $message
    Write-Host "##octopus[stdout-default]"
}

function Write-Wait([string]$message) {
    Write-Host "##octopus[stdout-wait]"
    Write-Host $message
    Write-Host "##octopus[stdout-default]"
}

. $__cuttleScript @__cuttleArguments
if ((Test-Path variable:global:LASTEXITCODE)) {
    exit $LASTEXITCODE
}
