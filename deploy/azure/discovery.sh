#!/bin/sh
# Gives the amldns VMs' managed identities what Azure discovery reads
# (docs/azure.md): the custom role of
# discovery-role.json (or the built-in Reader) on each subscription scanned.
# Run once, by someone who may create roles and role assignments
# (Owner or User Access Administrator), with the Azure CLI signed in.
#
#   SUBSCRIPTIONS="sub-id-1 sub-id-2" RG=rg-dns VMS="amldns-1 amldns-2" sh discovery.sh
#   ROLE=Reader ... sh discovery.sh        # the built-in role instead
set -eu
: "${SUBSCRIPTIONS:?space-separated subscription ids to scan}"
: "${RG:?resource group of the amldns VMs}"
: "${VMS:?names of the amldns VMs}"
ROLE="${ROLE:-amldns discovery reader}"
here="$(cd "$(dirname "$0")" && pwd)"

if [ "$ROLE" = "amldns discovery reader" ]; then
  scopes=""
  for s in $SUBSCRIPTIONS; do scopes="$scopes\"/subscriptions/$s\","; done
  def="$(mktemp)"
  sed "s#\"/subscriptions/SUBSCRIPTION_ID\"#${scopes%,}#" "$here/discovery-role.json" >"$def"
  first="${SUBSCRIPTIONS%% *}"
  if az role definition list --custom-role-only true --name "$ROLE" \
       --scope "/subscriptions/$first" --query '[0].name' -o tsv | grep -q .; then
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
  for s in $SUBSCRIPTIONS; do
    az role assignment create --assignee-object-id "$principal" \
      --assignee-principal-type ServicePrincipal \
      --role "$ROLE" --scope "/subscriptions/$s"
  done
done
echo "Role assignments can take a few minutes to apply; until then rounds fail with HTTP 403."
