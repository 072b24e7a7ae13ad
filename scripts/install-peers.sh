#!/usr/bin/env bash
# Installs, from Debian's packages, the DNS servers and tools that
# tests/it/peers.rs and scripts/e2e.sh load amldns's output into, when absent:
# unbound, dnsmasq, named (and named-checkzone/named-checkconf), dig, ip;
# and the Python tools of tests/support/requirements.txt (the `az` stand-in's
# JMESPath, a PowerShell grammar) into a venv, target/peers-venv, from PyPI.
# Package scripts must not start the services they install: Debian's Unbound
# service fetches the root trust anchor from the internet on start, and these
# machines send nothing off loopback. So service starts are refused
# through policy-rc.d while apt runs. Without root or apt-get it says so and
# exits 0 (the tests that need the programs skip); under CI=true (.ci/run),
# where it runs as root on Debian, that fails, and so does anything still
# missing after the install.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

have() { command -v "$1" >/dev/null 2>&1; }
# program:package, for every program the tests and e2e.sh run.
programs=(unbound:unbound unbound-checkconf:unbound dnsmasq:dnsmasq-base
  named-checkzone:bind9-utils named-checkconf:bind9-utils named:bind9 dig:dnsutils ip:iproute2
  python3:python3)
missing() {
  local p
  for p in "${programs[@]}"; do have "${p%%:*}" || echo "${p#*:}"; done
  # Debian's python3 makes venvs only with python3-venv (ensurepip).
  have python3 && ! python3 -c 'import ensurepip' 2>/dev/null && echo python3-venv
  true
}

venv=$(cd "$(dirname "$0")/.." && pwd)/target/peers-venv
python_tools() {
  "$venv/bin/python3" -c 'import jmespath, tree_sitter_powershell' 2>/dev/null && return
  echo "install-peers: installing tests/support/requirements.txt into $venv"
  rm -rf "$venv"
  if ! { python3 -m venv "$venv" &&
    timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check \
      -r "$(dirname "$0")/../tests/support/requirements.txt"; }; then
    if [[ ${CI:-} == true ]]; then
      echo "install-peers: the Python tools did not install" >&2
      exit 1
    fi
    echo "install-peers: the Python tools did not install; the tests that need them skip"
  fi
}

mapfile -t need < <(missing | sort -u)
if ((${#need[@]} == 0)); then
  echo "install-peers: all programs present"
  python_tools
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
mapfile -t still < <(missing | sort -u)
if ((${#still[@]})); then
  echo "install-peers: still missing after the install: ${still[*]}" >&2
  exit 1
fi
echo "install-peers: installed ${need[*]}"
python_tools
