# The program of `amldns records --format azcli` (src/export/azcli.rs fills
# it): Azure Private DNS zones holding the table, linked to a VNet, made and
# kept with the Azure CLI. This note, to the first empty line, is not output.
# Placeholders:
#   {{private_zones}}, a line of its own: comment lines on how names become
#     zones, and the names left out (export::private_zones);
#   {{existing_zones}}, a line of its own: empty, or the assignments of
#     `--existing-zones` (ZONES, SUBSCRIPTION, RG), after the environment is
#     read so that they win over it;
#   {{want}}, inside WANT's quotes: the record sets, one a line (no newline
#     after the last), each zone, record set, type (a or aaaa), TTL and
#     addresses (sorted, comma-separated), tab-separated.
# The rest brings every record set of $WANT to its TTL and addresses, then
# removes the marked record sets and zones that $WANT no longer has. A record
# set it did not mark is never changed: it is listed instead (exit 1), since
# the name then does not answer what the table says. noglob: the record set
# "*" is a name, not a pattern.

#!/usr/bin/env bash
# amldns records as Azure Private DNS zones (bash, Azure CLI): set RG (resource
# group) and VNET_ID (the virtual network's resource id), then run it. Each
# zone is linked to the VNet (link "amldns").
# With ZONES=existing it only writes record sets, into zones that already
# exist in RG (SUBSCRIPTION: theirs, when not the CLI's current one), as a
# landing zone's central private DNS zones are, where policy forbids creating
# privatelink.* zones elsewhere: it never creates, links or deletes a zone
# (VNET_ID is not needed), and the record sets of a zone missing there are
# listed and not written (exit status 1 once the rest are).
# `amldns records --format azcli --existing-zones SUBSCRIPTION/RG` writes that
# mode and both names into the script.
# What it makes is marked: zones with the tag managed-by=amldns, record sets
# with the metadata managed-by=amldns; only those are ever changed or removed
# (a record set a private endpoint's DNS zone group made is left alone, and
# listed when it differs from the table), and a zone only once nothing but its
# SOA is left in it.
{{private_zones}}
set -euo pipefail -o noglob
{{existing_zones}}
: "${RG:?set RG to the resource group}"
ZONES=${ZONES:-create}
case $ZONES in
  create) : "${VNET_ID:?set VNET_ID to the resource id of the VNet}" ;;
  existing) ;;
  *) echo "ZONES is create (the default) or existing, not $ZONES" >&2; exit 2 ;;
esac
# zone, record set, type, TTL, addresses (sorted), tab-separated.
WANT="\
{{want}}"

dns() {
  az network private-dns "$@" --resource-group "$RG" ${SUBSCRIPTION:+--subscription "$SUBSCRIPTION"} \
    --only-show-errors
}
MARK=managed-by=amldns
MARKED="[?metadata.\"managed-by\"=='amldns'].name"
zones=$(cut -f1 <<<"$WANT" | sort -u)
missing=""
others=""
for zone in $zones; do
  if [[ $ZONES == existing ]]; then
    dns zone show --name "$zone" --output none 2>/dev/null || missing+="$zone"$'\n'
    continue
  fi
  dns zone show --name "$zone" --output none 2>/dev/null ||
    dns zone create --name "$zone" --tags "$MARK" --output none
  dns link vnet show --zone-name "$zone" --name amldns --output none 2>/dev/null ||
    dns link vnet create --zone-name "$zone" --name amldns --virtual-network "$VNET_ID" \
      --registration-enabled false --output none
done
while IFS=$'\t' read -r zone set type ttl addrs; do
  [[ -n $zone ]] || continue
  grep -qxF "$zone" <<<"$missing" && continue
  case $type in
    a) field=aRecords[].ipv4Address flag=--ipv4-address ;;
    aaaa) field=aaaaRecords[].ipv6Address flag=--ipv6-address ;;
  esac
  # Its mark (or -), TTL and addresses: "amldns 60 10.1.0.5,10.1.0.6".
  have=$(dns record-set "$type" show --zone-name "$zone" --name "$set" \
    --query "join(' ', [metadata.\"managed-by\" || '-', to_string(ttl), join(',', sort($field))])" \
    --output tsv 2>/dev/null || true)
  if [[ -n $have ]]; then
    [[ ${have#* } == "$ttl $addrs" ]] && continue
    if [[ ${have%% *} != amldns ]]; then
      others+="$zone: $set ${type^^} ${have#* } (the table: $ttl $addrs)"$'\n'
      continue
    fi
    dns record-set "$type" delete --zone-name "$zone" --name "$set" --yes
  fi
  dns record-set "$type" create --zone-name "$zone" --name "$set" --ttl "$ttl" --metadata "$MARK" --output none
  for ip in ${addrs//,/ }; do
    dns record-set "$type" add-record --zone-name "$zone" --record-set-name "$set" "$flag" "$ip" --output none
  done
done <<<"$WANT"
wanted_sets=$(cut -f1-3 <<<"$WANT")
if [[ $ZONES == existing ]]; then
  # Record sets it wrote may be in any zone of the group; no zone is its own.
  marked_zones=$(dns zone list --query "[].name" --output tsv)
  zones=""
else
  marked_zones=$(dns zone list --query "[?tags.\"managed-by\"=='amldns'].name" --output tsv)
fi
for zone in $(sort -u <<<"$zones"$'\n'"$marked_zones"); do
  for type in a aaaa; do
    for set in $(dns record-set "$type" list --zone-name "$zone" --query "$MARKED" --output tsv); do
      grep -qxF "$zone"$'\t'"$set"$'\t'"$type" <<<"$wanted_sets" ||
        dns record-set "$type" delete --zone-name "$zone" --name "$set" --yes
    done
  done
  # Not wanted any more, so one of the marked zones (none with ZONES=existing).
  [[ $ZONES == existing ]] && continue
  grep -qxF "$zone" <<<"$zones" && continue
  left=$(dns record-set list --zone-name "$zone" \
    --query "length([?type!='Microsoft.Network/privateDnsZones/SOA'])" --output tsv)
  if [[ $left == 0 ]]; then
    dns link vnet delete --zone-name "$zone" --name amldns --yes
    dns zone delete --name "$zone" --yes
  fi
done
status=0
if [[ -n $missing ]]; then
  echo "these zones do not exist in $RG, so their record sets were not written" \
    "(ZONES=existing creates none):" >&2
  printf '  %s\n' $missing >&2
  status=1
fi
if [[ -n $others ]]; then
  echo "these record sets were not written by amldns (no metadata managed-by=amldns)" \
    "and differ from the table; they were left as they are:" >&2
  sed 's/^/  /' <<<"${others%$'\n'}" >&2
  status=1
fi
exit $status
