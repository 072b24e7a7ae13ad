# The program of `amldns records --format powershell --existing-zones
# SUBSCRIPTION/RESOURCE_GROUP` (src/export/powershell.rs fills it): the
# table's record sets written into the Azure Private DNS zones that already
# exist in one resource group, with the Az.PrivateDns module. This note, to the
# first empty line, is not output.
# Placeholders:
#   {{private_zones}}, {{want}}: as in records.ps1 ($Want is the same table);
#   {{subscription}}, {{resource_group}}: inside single quotes (the values
#     hold no quote: export::existing_zones checks them).
# The rest brings every record set $Want has in a zone that exists to its TTL
# and addresses, and removes the record sets it marked that $Want no longer
# has, in every zone of the group; it never creates, links or deletes a zone,
# and never changes a record set it did not mark. The address parameter is
# splatted: tree-sitter's PowerShell grammar, which the tests parse this with
# (no PowerShell runs there), rejects parameter names with digits
# (-Ipv4Address).

# amldns records written into existing Azure Private DNS zones (PowerShell,
# Az.PrivateDns module): run it after Connect-AzAccount. It writes only
# record sets, into the zones that already exist in the resource group below,
# as a landing zone's central private DNS zones do, where policy forbids
# creating privatelink.* zones elsewhere: it never creates, links or deletes a
# zone. The record sets of a zone missing there are listed and not written
# (exit status 1 once the rest are).
# The record sets it writes carry the metadata managed-by=amldns; only those
# are ever changed or removed. One without it (a private endpoint's DNS zone
# group made it) is left alone, and listed (exit status 1) when it differs
# from the table.
{{private_zones}}
$ErrorActionPreference = "Stop"
$Subscription = '{{subscription}}'
$ResourceGroup = '{{resource_group}}'
# Zone -> its records, each "name type ttl address".
$Want = [ordered]@{
{{want}}
}

$Mark = @{ "managed-by" = "amldns" }
# Per type: the record's property, and New-AzPrivateDnsRecordConfig's
# parameter, that holds the address.
$Field = @{ "A" = "Ipv4Address"; "AAAA" = "Ipv6Address" }

# A record set's content as compared: "ttl address,address", sorted.
function Format-Records($Ttl, $Ips) {
    "$Ttl " + (($Ips | Sort-Object) -join ",")
}

# For this session only: the context Az saves for the next ones stays.
Set-AzContext -Subscription $Subscription -Scope Process | Out-Null
$Zones = @(Get-AzPrivateDnsZone -ResourceGroupName $ResourceGroup | ForEach-Object { $_.Name })
$Others = @()
# Every zone of the group: a record set it wrote earlier may be in any of them.
foreach ($Zone in $Zones) {
    # "name type" -> the record set $Want has there and does not have yet.
    $Sets = [ordered]@{}
    if ($Want.Contains($Zone)) {
        foreach ($Key in $Want[$Zone]) {
            $Name, $Type, $Ttl, $Ip = $Key -split " "
            $Id = "$Name $Type"
            if (-not $Sets.Contains($Id)) {
                $Sets[$Id] = @{ Name = $Name; Type = $Type; Ttl = [int]$Ttl; Ips = @(); Replace = $false }
            }
            $Sets[$Id].Ips += $Ip
        }
    }
    $Existing = Get-AzPrivateDnsRecordSet -ResourceGroupName $ResourceGroup -ZoneName $Zone
    foreach ($Set in $Existing | Where-Object { "$($_.RecordType)" -in "A", "AAAA" }) {
        $Id = "$($Set.Name) $($Set.RecordType)"
        $Marked = $Set.Metadata -and $Set.Metadata["managed-by"] -eq "amldns"
        if (-not $Sets.Contains($Id)) {
            if ($Marked) {
                Remove-AzPrivateDnsRecordSet -RecordSet $Set -Confirm:$false | Out-Null
            }
            continue
        }
        $Property = $Field["$($Set.RecordType)"]
        $Have = Format-Records $Set.Ttl ($Set.Records | ForEach-Object { $_.$Property })
        $Wanted = Format-Records $Sets[$Id].Ttl $Sets[$Id].Ips
        if ($Have -eq $Wanted) {
            $Sets.Remove($Id)
        } elseif (-not $Marked) {
            $Others += "${Zone}: $Id $Have (the table: $Wanted)"
            $Sets.Remove($Id)
        } else {
            $Sets[$Id].Replace = $true
        }
    }
    foreach ($New in $Sets.Values) {
        $Records = foreach ($Ip in $New.Ips) {
            $Address = @{ $Field[$New.Type] = $Ip }
            New-AzPrivateDnsRecordConfig @Address
        }
        # A marked record set that differs is replaced whole, in one write.
        $Replace = $New.Replace
        New-AzPrivateDnsRecordSet -ResourceGroupName $ResourceGroup -ZoneName $Zone -Name $New.Name -RecordType $New.Type -Ttl $New.Ttl -PrivateDnsRecord $Records -Metadata $Mark -Overwrite:$Replace | Out-Null
    }
}
$Missing = @($Want.Keys | Where-Object { $Zones -notcontains $_ })
$Status = 0
if ($Missing) {
    Write-Warning ("these zones do not exist in $ResourceGroup, so their record sets were not written (this script creates none):`n  " + ($Missing -join "`n  "))
    $Status = 1
}
if ($Others) {
    Write-Warning ("these record sets were not written by amldns (no metadata managed-by=amldns) and differ from the table; they were left as they are:`n  " + ($Others -join "`n  "))
    $Status = 1
}
exit $Status
