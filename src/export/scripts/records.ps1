# The program of `amldns records --format powershell` (src/export/powershell.rs
# fills it): Windows DNS zones holding the table, made and kept by the
# DnsServer module. This note, to the first empty line, is not output.
# Placeholders, each a line of its own, filled with whole lines:
#   {{private_zones}}: comment lines on how names become zones, and the names
#     left out (export::private_zones);
#   {{want}}: the entries of $Want, zone -> its records, each
#     "name type ttl address" (relative name, A or AAAA, seconds, address).
# The rest brings each zone of $Want to exactly its A/AAAA records, then
# removes the zones marked _amldns that $Want no longer has. The address
# parameters are splatted: tree-sitter's PowerShell grammar, which the tests
# parse this with (no PowerShell runs there), rejects parameter names with
# digits (-IPv4Address).

# amldns records for Windows DNS: run in an elevated PowerShell on the DNS
# server (DnsServer module). On a domain controller, replace
# -ZoneFile "$Zone.dns" with -ReplicationScope Forest.
# The zones it made carry a TXT record _amldns; only those are ever removed.
# Simpler still: a conditional forwarder to amldns (amldns forwarders).
{{private_zones}}
$ErrorActionPreference = "Stop"
# Zone -> its records, each "name type ttl address".
$Want = [ordered]@{
{{want}}
}

$Marker = "_amldns"
foreach ($Zone in $Want.Keys) {
    if (-not (Get-DnsServerZone -Name $Zone -ErrorAction SilentlyContinue)) {
        Add-DnsServerPrimaryZone -Name $Zone -ZoneFile "$Zone.dns"
    }
    if (-not (Get-DnsServerResourceRecord -ZoneName $Zone -Name $Marker -RRType Txt -ErrorAction SilentlyContinue)) {
        Add-DnsServerResourceRecord -ZoneName $Zone -Name $Marker -Txt -DescriptiveText "made by amldns records --format powershell"
    }
    $Have = @{}
    foreach ($Rr in Get-DnsServerResourceRecord -ZoneName $Zone | Where-Object { $_.RecordType -in "A", "AAAA" }) {
        $Ip = if ($Rr.RecordType -eq "A") { $Rr.RecordData.IPv4Address } else { $Rr.RecordData.IPv6Address }
        $Key = "$($Rr.HostName) $($Rr.RecordType) $([int]$Rr.TimeToLive.TotalSeconds) $Ip"
        if ($Want[$Zone] -ccontains $Key) {
            $Have[$Key] = $true
        } else {
            Remove-DnsServerResourceRecord -ZoneName $Zone -InputObject $Rr -Force
        }
    }
    foreach ($Key in $Want[$Zone]) {
        if ($Have.ContainsKey($Key)) { continue }
        $Name, $Type, $Ttl, $Ip = $Key -split " "
        $Record = @{ ZoneName = $Zone; Name = $Name; TimeToLive = (New-TimeSpan -Seconds $Ttl) }
        if ($Type -eq "A") {
            $Record.IPv4Address = $Ip
            Add-DnsServerResourceRecordA @Record
        } else {
            $Record.IPv6Address = $Ip
            Add-DnsServerResourceRecordAAAA @Record
        }
    }
}
foreach ($Old in Get-DnsServerZone | Where-Object { -not $_.IsAutoCreated -and -not $Want.Contains($_.ZoneName) }) {
    if (Get-DnsServerResourceRecord -ZoneName $Old.ZoneName -Name $Marker -RRType Txt -ErrorAction SilentlyContinue) {
        Remove-DnsServerZone -Name $Old.ZoneName -Force
    }
}
