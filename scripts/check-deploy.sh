#!/usr/bin/env bash
# Checks every file under deploy/ (docs/deploying.md); CI runs it after the
# tests. Prints one line per check ("ok", "FAIL" or "skip") and exits 1 if any
# check failed.
#
# On first run it installs what it needs, and nothing else, on a Debian
# machine as root: a few Debian packages (apt-get), promtool and cloud-init
# unpacked from Debian's packages into target/deploy-check/ (not installed:
# no Prometheus or cloud-init service appears), and pinned Python tools in a
# venv there (scripts/deploy-checks/requirements.txt). Later runs reuse them.
# The only network traffic is those package downloads. Then it builds the
# commit under test (cargo build --locked, a no-op when fresh), and the
# checks, those that run that very amldns binary included, run inside a
# network namespace of their own with only loopback up (as root; without
# root they run on the host's network, saying so, except under CI=true,
# where that fails).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TOOLS=$REPO/target/deploy-check
VENV=$TOOLS/venv
CHECKS=$REPO/scripts/deploy-checks
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
mkdir -p "$TOOLS"

failed=0
ok() { printf 'ok   %s: %s\n' "$1" "$2"; }
skip() { printf 'skip %s: %s\n' "$1" "$2"; }
fail() {
  printf 'FAIL %s: %s\n' "$1" "$2"
  failed=1
}
# run NAME DETAIL CMD...: one line, and the command's output only on failure.
run() {
  local name=$1 detail=$2 out
  shift 2
  if out=$(timeout 300 "$@" 2>&1); then
    ok "$name" "$detail"
  else
    fail "$name" "exit $?"
    printf '%s\n' "$out" | tail -n 30 | sed 's/^/     /'
  fi
}
# Python checks print their own lines.
py() {
  timeout 300 "$VENV/bin/python" "$@" || failed=1
}

# Where the tools are (installed below, outside the namespace).
UNPACKED=$TOOLS/debs/root
PROMTOOL=$UNPACKED/usr/bin/promtool
CLOUDINIT_PY=$UNPACKED/usr/lib/python3/dist-packages
CLOUDINIT_SCHEMA=$CLOUDINIT_PY/cloudinit/config/schemas/schema-cloud-config-v1.json
REQS=$CHECKS/requirements.txt

if [ "${1:-}" != --inside ] && [ "${1:-}" != --inside-host ]; then
  # --- Tools -----------------------------------------------------------------

  apt_updated=0
  apt_update() {
    if [ "$apt_updated" = 0 ]; then
      apt-get update -qq >/dev/null
      apt_updated=1
    fi
  }
  need=()
  command -v systemd-analyze >/dev/null || need+=(systemd)
  command -v strace >/dev/null || need+=(strace)
  command -v python3 >/dev/null || need+=(python3)
  command -v dpkg-deb >/dev/null || need+=(dpkg)
  command -v ip >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "check-deploy: needs ${need[*]} (run as root once to install them)" >&2
      exit 1
    fi
    apt_update
    timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    ok "tools: apt" "installed ${need[*]}"
  fi

  # promtool and cloud-init, unpacked from Debian's packages.
  if [ ! -x "$UNPACKED/usr/bin/promtool" ] || [ ! -d "$UNPACKED/usr/lib/python3/dist-packages/cloudinit" ]; then
    dl=$(mktemp -d)
    # apt's download user must be able to write there.
    if id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
    if ! (cd "$dl" && timeout 300 apt-get download -qq prometheus cloud-init >/dev/null 2>&1); then
      apt_update
      (cd "$dl" && timeout 300 apt-get download -qq prometheus cloud-init >/dev/null)
    fi
    rm -rf "$UNPACKED"
    mkdir -p "$UNPACKED"
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$UNPACKED"; done
    ok "tools: unpacked" "$(for deb in "$dl"/*.deb; do printf '%s ' "${deb##*/}"; done)"
    rm -rf "$dl"
  fi

  # Python tools, made again when requirements.txt (or the python3 under the
  # venv) changes.
  want=$(sha256sum "$REQS" | cut -d' ' -f1)
  if ! "$VENV/bin/python" -c '' 2>/dev/null || [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$want" ]; then
    rm -rf "$VENV"
    # Debian's python3 makes venvs with pip only once python3-venv is there.
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt_update
      timeout 600 apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$VENV"
    fi
    timeout 600 "$VENV/bin/pip" install -q --no-input --timeout 60 --only-binary :all: -r "$REQS"
    echo "$want" >"$VENV/.requirements"
    ok "tools: venv" "$(grep -c '==' "$REQS") pinned Python packages in ${VENV#"$REPO"/}"
  fi


  # The commit under test: the checks run exactly the binary this build made.
  AMLDNS=$(bash scripts/build-amldns.sh)
  export AMLDNS
  if unshare --net -- true 2>/dev/null; then
    # shellcheck disable=SC2016 # $1 is the inner shell's
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$1" --inside' _ "$REPO/scripts/check-deploy.sh"
  elif [ "${CI:-}" = true ]; then
    fail "network namespace" "unshare --net is not permitted (run as root): CI=true, failing instead of running unisolated"
    exit 1
  fi
  skip "network namespace" "unshare --net is not permitted: the checks run on the host's network"
  exec bash "$REPO/scripts/check-deploy.sh" --inside-host
fi

# ---- inside the namespace (or, --inside-host, without one) -----------------
if [ "$1" = --inside ]; then
  ok "network namespace" "only $(ip -o link show | awk -F': ' '{print $2}' | paste -sd, -)"
fi
if [ ! -x "${AMLDNS:-}" ]; then
  echo "check-deploy: $1 needs AMLDNS, the amldns binary" >&2
  exit 2
fi
amldns_args=(--amldns "$AMLDNS")
ok "amldns" "$("$AMLDNS" --version) at ${AMLDNS#"$REPO"/}"

# --- systemd ---------------------------------------------------------------

UNIT=deploy/systemd/amldns.service
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# A root with the host's units, the unit, and the programs it runs (verify
# checks they exist): the amldns under test, and kill.
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/usr/local/bin" "$root/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$UNIT" deploy/systemd/amldns-doctor.service deploy/systemd/amldns-doctor.timer "$root/etc/systemd/system/"
standin() {
  printf '#!/bin/sh\nexit 0\n' >"$1"
  chmod 0755 "$1"
}
# /bin/kill comes with procps, on every Ubuntu and most Debian machines.
if kill_bin=$(type -P kill); then cp "$kill_bin" "$root/bin/kill"; else standin "$root/bin/kill"; fi
# The doctor's unit runs its command through sh.
cp "$(type -P sh)" "$root/bin/sh"
cp "$AMLDNS" "$root/usr/local/bin/amldns"
# verify exits 0 on unknown keys and bad values (it only warns): any output fails.
if out=$(timeout 120 systemd-analyze verify --man=no --root="$root" amldns.service \
  amldns-doctor.service amldns-doctor.timer 2>&1) && [ -z "$out" ]; then
  ok "systemd: verify" "systemd-analyze verify: no warnings"
else
  fail "systemd: verify" "systemd-analyze verify:"
  printf '%s\n' "$out" | sed 's/^/     /'
fi
# --threshold is on systemd's internal 0-100 scale: 20 is an exposure of 2.0.
if out=$(timeout 120 systemd-analyze security --offline=true --threshold=20 --root="$root" amldns.service 2>&1); then
  ok "systemd: security" "$(printf '%s\n' "$out" | grep -o 'exposure level.*' | tail -n 1) (at most 2.0 allowed)"
else
  fail "systemd: security" "$(printf '%s\n' "$out" | grep -o 'exposure level.*' | tail -n 1) (at most 2.0 allowed)"
  printf '%s\n' "$out" | grep -v '^✓' | tail -n 30 | sed 's/^/     /'
fi
py "$CHECKS/live.py" --amldns "$AMLDNS" --healthcheck deploy/container/healthcheck.sh --trace "$UNIT"

# --- Container -------------------------------------------------------------

run "container: hadolint" "$("$VENV/bin/hadolint" --version | head -n 1): no findings" \
  "$VENV/bin/hadolint" --failure-threshold style deploy/container/Dockerfile
py "$CHECKS/container.py" --repo "$REPO" "${amldns_args[@]}"
run "shellcheck" "healthcheck.sh, check-deploy.sh" \
  "$VENV/bin/shellcheck" deploy/container/healthcheck.sh scripts/check-deploy.sh

# --- YAML, Kubernetes ------------------------------------------------------

run "yaml: yamllint" "every YAML file in deploy/" \
  "$VENV/bin/yamllint" --strict -c "$CHECKS/yamllint.yml" deploy/
# The ServiceMonitor is a CRD: kubernetes.py checks it against the operator's types.
k8s=(deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment.yaml
  deploy/kubernetes/service.yaml deploy/kubernetes/pdb.yaml deploy/kubernetes/doctor-cronjob.yaml)
for v in 1.30.0 1.37.0; do
  run "kubernetes: schema $v" "${#k8s[@]} files valid (strict: no unknown fields)" \
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${k8s[@]}"
done
py "$CHECKS/kubernetes.py" deploy/kubernetes "${amldns_args[@]}"

# --- Azure -----------------------------------------------------------------

run "azure: cloud-init schema" "cloud-init $(sed -n 's/^Version: //p' "$CLOUDINIT_PY"/cloud_init-*.egg-info/PKG-INFO 2>/dev/null) schema --config-file: valid" \
  env PYTHONPATH="$CLOUDINIT_PY" "$VENV/bin/python" -m cloudinit.cmd.main schema \
  --config-file deploy/azure/cloud-init.yaml
py "$CHECKS/azure.py" --repo "$REPO" --shellcheck "$VENV/bin/shellcheck" \
  --schema "$CLOUDINIT_SCHEMA" "${amldns_args[@]}"

# --- Monitoring ------------------------------------------------------------

pv=$("$PROMTOOL" --version 2>&1 | sed -n 's/^promtool, version \([^ ]*\).*/\1/p')
run "monitoring: promtool check config" "promtool $pv: prometheus.yml and its rule file" \
  "$PROMTOOL" check config deploy/monitoring/prometheus.yml
run "monitoring: promtool check rules" "alerts.yml" \
  "$PROMTOOL" check rules deploy/monitoring/alerts.yml
run "monitoring: promtool test rules" "alerts_test.yml: the alerts fire when they should" \
  bash -c "cd deploy/monitoring && '$PROMTOOL' test rules alerts_test.yml"
py "$CHECKS/monitoring.py" --repo "$REPO" --promtool "$PROMTOOL"

# --- docs/deploying.md ------------------------------------------------------

# Every file under deploy/ is named in docs/deploying.md's "Deploying"
# section, and every deploy/ link there exists; deploy/onprem/ has checks of
# its own.
section=$(awk '/^## Deploying/{on=1; next} /^## /{on=0} on' docs/deploying.md)
missing=()
while IFS= read -r f; do
  grep -qF "$f" <<<"$section" || missing+=("$f")
done < <(find deploy -type f ! -path 'deploy/onprem/*' | sort)
broken=()
while IFS= read -r link; do
  [ -e "$link" ] || broken+=("$link")
done < <(grep -o '](\.\./deploy/[^)]*)' <<<"$section" | sed 's/^](\.\.\///; s/)$//' | grep -v '^deploy/onprem/' | sort -u)
if [ -z "$section" ]; then
  fail "docs: Deploying" "no \"## Deploying\" section in docs/deploying.md"
elif [ ${#missing[@]} -gt 0 ] || [ ${#broken[@]} -gt 0 ]; then
  fail "docs: Deploying" "not named: ${missing[*]:-none}; broken links: ${broken[*]:-none}"
else
  ok "docs: Deploying" "names every file under deploy/; its links exist"
fi

if [ "$failed" != 0 ]; then
  echo "check-deploy: FAILED" >&2
  exit 1
fi
echo "check-deploy: all checks passed"
