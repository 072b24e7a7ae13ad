#!/usr/bin/env bash
# The Debian package (docs/deploying.md), built and tried as an operator
# would: cargo-deb builds target/debian/amldns_<version>-1_<arch>.deb from
# Cargo.toml's [package.metadata.deb]; lintian checks it; then it is
# installed with dpkg into a throwaway Debian (mmdebstrap, from the Debian
# mirror this machine's apt uses) where the installed amldns runs `check`
# and answers a query, inside a network namespace with only loopback.
# Purged at the end, to see its removal scripts work. CI runs it.
#
# Installs, when absent and run as root: lintian, mmdebstrap, dpkg-dev (for
# dpkg-shlibdeps), iproute2 and dig from Debian's packages, and cargo-deb
# from crates.io (pinned). Prints each step's output; exits 1 on the first
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CARGO_DEB_VERSION=3.8.0
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n=== %s\n' "$*"; }

# --- Tools -----------------------------------------------------------------
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v ip >/dev/null || need+=(iproute2)
command -v dig >/dev/null || need+=(bind9-dnsutils)
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  timeout 300 apt-get update -qq -o DPkg::Lock::Timeout=300
  timeout 900 apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
fi
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
  step "cargo install cargo-deb $CARGO_DEB_VERSION"
  timeout 1800 cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

# --- Build -----------------------------------------------------------------
step "cargo deb"
# The build date in `amldns --version` is the last commit's, so that two
# builds of one commit give the same package (reproducible-builds.org).
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
rm -rf target/debian
timeout 2400 cargo deb --locked --output target/debian/
deb=$(ls target/debian/amldns_*.deb)
step "dpkg-deb --info $deb"
dpkg-deb --info "$deb"
step "dpkg-deb --contents $deb"
dpkg-deb --contents "$deb"
# The config is a conffile: an upgrade keeps the operator's edits.
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/amldns/amldns.toml

step "lintian $deb"
# Errors and warnings fail; pedantic and info tags are shown.
lintian --fail-on error,warning --display-info --pedantic "$deb"
echo "lintian: no errors, no warnings"

# --- Installed in a throwaway Debian -----------------------------------------
# The suite and mirror of this machine's apt: its deb822 file, or sources.list.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
root=$(mktemp -d /tmp/amldns-deb-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
step "mmdebstrap --variant=apt $suite (from $sources)"
timeout 900 mmdebstrap --quiet --variant=apt "$suite" "$root" "$sources"
cp "$deb" "$root/tmp/amldns.deb"

step "dpkg -i amldns.deb (in the chroot)"
timeout 120 chroot "$root" dpkg -i /tmp/amldns.deb
chroot "$root" dpkg -s amldns | sed -n '/^Package/p;/^Status/p;/^Version/p;/^Depends/p;/^Conffiles/,/^[A-Z]/p'
for f in /usr/bin/amldns /usr/lib/systemd/system/amldns.service /etc/amldns/amldns.toml \
  /usr/share/doc/amldns/README.md /usr/share/doc/amldns/copyright /usr/share/man/man1/amldns.1.gz; do
  [ -e "$root$f" ] || { echo "deb: $f is not installed" >&2; exit 1; }
done
cmp "$root/usr/lib/systemd/system/amldns.service" deploy/systemd/amldns.service

step "amldns --version (in the chroot)"
chroot "$root" amldns --version

step "amldns check --config /etc/amldns/amldns.toml (the shipped config: refused until edited)"
if out=$(chroot "$root" amldns check --config /etc/amldns/amldns.toml 2>&1); then
  echo "$out"
  echo "deb: the shipped config names no workspace and must not pass" >&2
  exit 1
fi
echo "$out"
grep -q "the config gives nothing to answer locally" <<<"$out"

cat >"$root/tmp/amldns.toml" <<'EOF'
[server]
listen = ["127.0.0.1:5399"]
allow = ["127.0.0.1/32"]
[upstream]
servers = ["127.0.0.1:9"]
[[record]]
name = "probe.privatelink.blob.core.windows.net"
a = ["10.9.9.9"]
EOF
step "amldns check --config /tmp/amldns.toml (in the chroot)"
chroot "$root" amldns check --config /tmp/amldns.toml

# The example imports pe/*.json beside it: the package ships them, so the
# example checks where it is installed, its imported name included.
step "amldns check on the installed example (in the chroot)"
out=$(chroot "$root" amldns check --config /usr/share/doc/amldns/examples/amldns.toml)
echo "$out"
grep -q "^imports: 1 name$" <<<"$out"

step "amldns serve in the chroot, dig from the host (a network namespace with only lo)"
# unshare --net: nothing but loopback exists, so nothing can leave the host.
timeout 60 unshare --net --mount bash -euo pipefail -c '
  root=$1
  ip link set lo up
  mount --bind /proc "$root/proc"
  chroot "$root" amldns serve --config /tmp/amldns.toml --watch off &
  pid=$!
  for _ in $(seq 50); do
    out=$(dig @127.0.0.1 -p 5399 +tries=1 +time=1 +norec probe.privatelink.blob.core.windows.net A) && break
    sleep 0.1
  done
  echo "$out"
  kill -TERM "$pid"
  wait "$pid"
  grep -q "status: NOERROR" <<<"$out"
  grep -Eq "^probe\.privatelink\.blob\.core\.windows\.net\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+10\.9\.9\.9$" <<<"$out"
' _ "$root"

step "dpkg --purge amldns (in the chroot)"
timeout 120 chroot "$root" dpkg --purge amldns
if [ -e "$root/etc/amldns/amldns.toml" ] || [ -e "$root/usr/bin/amldns" ]; then
  echo "deb: purge left files behind" >&2
  exit 1
fi

printf '\ndeb: %s built, lintian-clean, installed, answered, purged\n' "$deb"
