#!/bin/bash
# Builds lukko.raw, a systemd-sysext image for hosts whose /usr is read-only and that have no
# Node.js (Flatcar). It holds exactly what scripts/install.sh --prefix /usr installs:
#
#   usr/lib/lukko/...                              runtime, build, production node_modules
#   usr/bin/lukko                                  the command
#   usr/lib/systemd/system/lukko*                  the units from units/
#   usr/lib/extension-release.d/extension-release.lukko
#
#   scripts/build-sysext.sh [--output FILE] [--id _any|flatcar] [--comp gzip|xz|zstd] [--fast]
#   npm run build:sysext                           (the same, with the defaults)
#
# Defaults: dist/sysext/lukko.raw, ID=_any. The image carries its own runtime and addons and
# depends only on glibc, libstdc++ and libsystemd, which every systemd host has, so it claims
# any OS (as the Flatcar sysext bakery's images do) and survives OS updates. `--id flatcar`
# writes ID=flatcar with SYSEXT_LEVEL=1.0 instead, which loads on Flatcar only.
# The image must be installed under the name lukko.raw (e.g. /etc/extensions/lukko.raw, or a
# symlink of that name): systemd-sysext requires the release file's suffix to match.
# --fast: gzip at level 1, 10x quicker and 10 % larger (the tests use it; same decompressor).
# Needs mksquashfs (Debian's squashfs-tools); installs it with apt-get when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUTPUT=$ROOT/dist/sysext/lukko.raw
ID=_any
COMP=gzip
FAST=

die() { printf 'build-sysext.sh: %s\n' "$*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --output) OUTPUT=${2:?}; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    --id) ID=${2:?}; shift 2 ;;
    --id=*) ID=${1#*=}; shift ;;
    --comp) COMP=${2:?}; shift 2 ;;
    --comp=*) COMP=${1#*=}; shift ;;
    --fast) FAST=1; COMP=gzip; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$ID" in _any|flatcar) ;; *) die "--id must be _any or flatcar" ;; esac
case "$COMP" in gzip|xz|zstd) ;; *) die "--comp must be gzip, xz or zstd" ;; esac
[ "$(basename "$OUTPUT")" = lukko.raw ] || printf 'build-sysext.sh: note: install the image as lukko.raw, the name its release file carries\n' >&2

if ! command -v mksquashfs >/dev/null; then
  [ "$(id -u)" = 0 ] || die "mksquashfs is missing: apt-get install squashfs-tools (as root)"
  printf 'build-sysext.sh: installing squashfs-tools\n' >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends squashfs-tools >/dev/null ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends squashfs-tools >/dev/null; }
fi

# The systemd architecture name of the runtime the image carries (ConditionArchitecture=).
case "$(file -b "$ROOT/.runtime/bin/node" 2>/dev/null || uname -m)" in
  *x86-64*|x86_64) ARCH=x86-64 ;;
  *aarch64*|*ARM\ aarch64*) ARCH=arm64 ;;
  *) die "cannot tell the architecture of $ROOT/.runtime/bin/node" ;;
esac
VERSION=$("$ROOT/.runtime/bin/node" -p 'require(process.argv[1]).version' "$ROOT/package.json")

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/lukko-sysext.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
"$ROOT/scripts/install.sh" --prefix /usr --destdir "$STAGE/root"

mkdir -p "$STAGE/root/usr/lib/extension-release.d"
{
  echo "ID=$ID"
  [ "$ID" = _any ] || echo "SYSEXT_LEVEL=1.0"
  echo "ARCHITECTURE=$ARCH"
  # Make systemd-sysext reload the manager after merging, so the units are known at once.
  echo "EXTENSION_RELOAD_MANAGER=1"
  echo "SYSEXT_ID=lukko"
  echo "SYSEXT_VERSION_ID=$VERSION"
} >"$STAGE/root/usr/lib/extension-release.d/extension-release.lukko"

mkdir -p "$(dirname "$OUTPUT")"
rm -f "$OUTPUT.new"
level=()
[ -z "$FAST" ] || level=(-Xcompression-level 1)
mksquashfs "$STAGE/root" "$OUTPUT.new" -all-root -noappend -comp "$COMP" "${level[@]}" -no-progress -quiet >/dev/null
mv "$OUTPUT.new" "$OUTPUT"
printf 'build-sysext.sh: %s (%s, ID=%s, %s, lukko %s); sha256 %s\n' "$OUTPUT" "$(du -h "$OUTPUT" | cut -f1)" \
  "$ID" "$ARCH" "$VERSION" "$(sha256sum "$OUTPUT" | cut -d' ' -f1)" >&2
