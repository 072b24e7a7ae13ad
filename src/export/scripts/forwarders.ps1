# The program of `amldns forwarders --format powershell`
# (src/export/powershell.rs fills it): a Windows DNS conditional forwarder
# per zone, added or updated. The comment lines before it (what was asked
# for, and notes) come from export::forwarders. This note, to the first
# empty line, is not output.
# Placeholders:
#   {{master_servers}}, inside @(): amldns's addresses, each quoted,
#     comma-separated;
#   {{zones}}, a line of its own: the zones, one a line, quoted and indented.

$ErrorActionPreference = "Stop"
$MasterServers = @({{master_servers}})
$Zones = @(
{{zones}}
)
foreach ($Zone in $Zones) {
    if (Get-DnsServerZone -Name $Zone -ErrorAction SilentlyContinue) {
        Set-DnsServerConditionalForwarderZone -Name $Zone -MasterServers $MasterServers
    } else {
        Add-DnsServerConditionalForwarderZone -Name $Zone -MasterServers $MasterServers
    }
}
