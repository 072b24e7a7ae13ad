#!/bin/sh
# Gives the amldns VMs' managed identities what Azure discovery reads
# (docs/azure.md): the custom role of discovery-role.json (or
# the built-in Reader) on each subscription scanned, or on each management
# group whose subscriptions are scanned (`[azure] management_groups`).
# Run once, by someone who may create roles and role assignments
# (Owner or User Access Administrator), with the Azure CLI signed in.
#
#   SUBSCRIPTIONS="sub-id-1 sub-id-2" RG=rg-dns VMS="amldns-1 amldns-2" sh discovery.sh
#   MANAGEMENT_GROUPS=mg-landing-zones RG=rg-dns VMS=amldns-1 sh discovery.sh
#   ROLE=Reader ... sh discovery.sh        # the built-in role instead
#
# Azure lets a custom role name at most one management group among its
# assignable scopes: for several, run once per group with its own ROLE name,
# or use ROLE=Reader.
set -eu
SUBSCRIPTIONS="${SUBSCRIPTIONS:-}"
MANAGEMENT_GROUPS="${MANAGEMENT_GROUPS:-}"
: "${RG:?resource group of the amldns VMs}"
: "${VMS:?names of the amldns VMs}"
ROLE="${ROLE:-amldns discovery reader}"
here="$(cd "$(dirname "$0")" && pwd)"

scopes=""
for s in $SUBSCRIPTIONS; do scopes="$scopes /subscriptions/$s"; done
for g in $MANAGEMENT_GROUPS; do
  scopes="$scopes /providers/Microsoft.Management/managementGroups/$g"
done
if [ -z "$scopes" ]; then
  echo "set SUBSCRIPTIONS (subscription ids) or MANAGEMENT_GROUPS (management group ids), or both" >&2
  exit 2
fi

if [ "$ROLE" = "amldns discovery reader" ]; then
  listed=""
  for s in $scopes; do listed="$listed\"$s\","; done
  def="$(mktemp)"
  sed "s#\"/subscriptions/SUBSCRIPTION_ID\"#${listed%,}#" "$here/discovery-role.json" >"$def"
  set -- $scopes
  if az role definition list --custom-role-only true --name "$ROLE" \
       --scope "$1" --query '[0].name' -o tsv | grep -q .; then
    az role definition update --role-definition "$def"
  else
    az role definition create --role-definition "$def"
  fi
  rm -f "$def"
fi

for vm in $VMS; do
  # A system-assigned identity: amldns's default `auth = "managed-identity"`
  # asks IMDS for its token, no secret on the VM.
  principal="$(az vm identity assign -g "$RG" -n "$vm" --query systemAssignedIdentity -o tsv)"
  for scope in $scopes; do
    az role assignment create --assignee-object-id "$principal" \
      --assignee-principal-type ServicePrincipal \
      --role "$ROLE" --scope "$scope"
  done
done
echo "Role assignments can take a few minutes to apply; until then rounds fail with HTTP 403."
