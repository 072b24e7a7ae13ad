#!/usr/bin/env bash
# Installs, from Debian's packages, the DNS servers and tools that
# tests/peers.rs and scripts/e2e.sh load amldns's output into, when absent:
# unbound, dnsmasq, named (and named-checkzone/named-checkconf), dig, ip.
# Package scripts must not start the services they install: Debian's Unbound
# service fetches the root trust anchor from the internet on start, and these
# machines send nothing off loopback (SPEC §7). So service starts are refused
# through policy-rc.d while apt runs. Without root or apt-get it says so and
# exits 0 (the tests that need the programs skip); under CI=true (.ci/run),
# where it runs as root on Debian, that fails, and so does any program still
# missing after the install.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

have() { command -v "$1" >/dev/null 2>&1; }
# program:package, for every program the tests and e2e.sh run.
programs=(unbound:unbound unbound-checkconf:unbound dnsmasq:dnsmasq-base
  named-checkzone:bind9-utils named-checkconf:bind9-utils named:bind9 dig:dnsutils ip:iproute2)
missing() {
  local p
  for p in "${programs[@]}"; do have "${p%%:*}" || echo "${p#*:}"; done | sort -u
}
mapfile -t need < <(missing)
if ((${#need[@]} == 0)); then
  echo "install-peers: all present"
  exit 0
fi

if [[ $(id -u) != 0 ]] || ! have apt-get; then
  if [[ ${CI:-} == true ]]; then
    echo "install-peers: cannot install ${need[*]} (needs root and apt-get)" >&2
    exit 1
  fi
  echo "install-peers: skipped: cannot install ${need[*]} (needs root and apt-get); the tests that need them skip"
  exit 0
fi
echo "install-peers: installing ${need[*]}"
policy=/usr/sbin/policy-rc.d
made_policy=
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  made_policy=1
fi
trap '[[ -n $made_policy ]] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
timeout 600 apt-get update -qq
timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}"
mapfile -t still < <(missing)
if ((${#still[@]})); then
  echo "install-peers: still missing after the install: ${still[*]}" >&2
  exit 1
fi
echo "install-peers: installed ${need[*]}"
