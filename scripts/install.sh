#!/bin/bash
# Installs the built lukko and its pinned Node runtime as one self-contained tree, and places
# the units:
#
#   PREFIX/lib/lukko/node/bin/node     the pinned runtime (.runtime), without headers and docs
#   PREFIX/lib/lukko/dist/             the build (npm run build), including dist/spawn/lukko-exec
#   PREFIX/lib/lukko/node_modules/     production dependencies only, native addons as built
#   PREFIX/lib/lukko/package.json      "type": "module" and the dependency list
#   PREFIX/bin/lukko                   the command (keygen, check-config, units ...)
#   UNITDIR/lukko.socket, lukko@.service ...   every units/lukko* file, including
#                                      lukko-translation.socket and .service (the optional
#                                      translation server, docs/translation-server.md) and
#                                      lukko-companion.service (metrics, docs/companion.md)
#
#   scripts/install.sh [--prefix /usr] [--destdir DIR] [--unitdir DIR] [--runtime DIR]
#
# --destdir stages the tree for a package or an image (scripts/build-sysext.sh); paths inside
# the files stay those of --prefix. The units name /usr/lib/lukko; another prefix is written
# into them. Nothing is enabled: `systemctl enable --now lukko.socket` is the operator's step.
# Build first (npm run build): this script only copies. Runs as root for a real install.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/usr
DESTDIR=
UNITDIR=
RUNTIME=$ROOT/.runtime

die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --destdir) DESTDIR=${2:?}; shift 2 ;;
    --destdir=*) DESTDIR=${1#*=}; shift ;;
    --unitdir) UNITDIR=${2:?}; shift 2 ;;
    --unitdir=*) UNITDIR=${1#*=}; shift ;;
    --runtime) RUNTIME=${2:?}; shift 2 ;;
    --runtime=*) RUNTIME=${1#*=}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$PREFIX" in /*) ;; *) die "--prefix must be absolute: $PREFIX" ;; esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "--prefix / is not supported (use /usr)"
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
case "$UNITDIR" in /*) ;; *) die "--unitdir must be absolute: $UNITDIR" ;; esac
[ -z "$DESTDIR" ] || DESTDIR=$(mkdir -p "$DESTDIR" && cd "$DESTDIR" && pwd)

APP=$PREFIX/lib/lukko          # as the installed files see it
DEST=$DESTDIR$APP              # where this run writes it
NODE=$RUNTIME/bin/node

for f in "$NODE" "$ROOT/dist/cli/main.js" "$ROOT/dist/spawn/lukko-exec" "$ROOT/node_modules/ssh2/package.json"; do
  [ -e "$f" ] || die "$f is missing: run scripts/setup.sh and npm run build first"
done
[ -d "$RUNTIME/include" ] || [ -f "$RUNTIME/LICENSE" ] || die "$RUNTIME does not look like a Node runtime"

# Copies keep modes, times and hard links but not the owner: the tree belongs to whoever
# installs it (root), never to the uid that happened to own the checkout.
copy() { cp -R --preserve=mode,timestamps,links "$@"; }

rm -rf "$DEST.new"
mkdir -p "$DEST.new"
trap 'rm -rf "$DEST.new"' EXIT

# 1. The runtime: bin/node and its licence. Headers (include/, only for building addons),
#    man pages and docs (share/, README, CHANGELOG) are not needed to run.
mkdir -p "$DEST.new/node/bin"
copy "$NODE" "$DEST.new/node/bin/node"
for f in LICENSE package.json; do [ -f "$RUNTIME/$f" ] && copy "$RUNTIME/$f" "$DEST.new/node/"; done

# 2. The build, without tsc's incremental state (a dot file) and without dist/sysext, where
#    scripts/build-sysext.sh puts its images.
mkdir -p "$DEST.new/dist"
for e in "$ROOT"/dist/*; do
  [ "$(basename "$e")" = sysext ] || copy "$e" "$DEST.new/dist/"
done

# 3. Production dependencies, as package-lock.json marks them (no "dev": true), copied from
#    node_modules as they are: native addons already built against this runtime, the ssh2
#    patch (scripts/patch-ssh2.mjs) already applied. No npm run here.
mkdir -p "$DEST.new/node_modules"
LUKKO_PKG_OUT="$DEST.new/package.json" "$NODE" - "$ROOT" >"$DEST.new/.packages" <<'EOF'
const { readFileSync, writeFileSync } = require('node:fs');
const root = process.argv[2];
const lock = JSON.parse(readFileSync(`${root}/package-lock.json`, 'utf8'));
const out = [];
for (const [path, meta] of Object.entries(lock.packages ?? {})) {
  if (path.startsWith('node_modules/')) out.push(`${meta.dev ? 'dev' : 'prod'} ${path}`);
}
console.log(out.join('\n'));
const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
const keep = ['name', 'version', 'description', 'license', 'private', 'type', 'engines', 'dependencies'];
writeFileSync(process.env.LUKKO_PKG_OUT, JSON.stringify(Object.fromEntries(keep.filter((k) => k in pkg).map((k) => [k, pkg[k]])), null, 2) + '\n');
EOF
# Top-level production packages (nested ones come with their parent) ...
while read -r kind path; do
  rest=${path#node_modules/}
  case "$rest" in */node_modules/*) continue ;; esac
  [ "$kind" = prod ] && [ -d "$ROOT/$path" ] || continue   # optional ones may be absent
  mkdir -p "$(dirname "$DEST.new/$path")"
  copy "$ROOT/$path" "$DEST.new/$path"
done <"$DEST.new/.packages"
# ... minus dev-only packages nested inside them.
while read -r kind path; do
  if [ "$kind" = dev ]; then rm -rf "$DEST.new/$path"; fi
done <"$DEST.new/.packages"
rm -f "$DEST.new/.packages"

# Build-time only: headers for compiling addons (nan, node-addon-api) and cpu-features'
# build probe (buildcheck); nothing requires them at run time.
rm -rf "$DEST.new/node_modules/nan" "$DEST.new/node_modules/node-addon-api" "$DEST.new/node_modules/buildcheck"
# node-pty: prebuilt binaries for macOS and Windows, its C++ sources and vendored libraries;
# Linux loads build/Release/pty.node.
( cd "$DEST.new/node_modules/node-pty" && rm -rf prebuilds deps third_party src scripts typings node-addon-api binding.gyp )
# cpu-features and ssh2's binding: sources. Every addon: gyp's build directory except the
# finished build/Release/*.node (obj.target holds a second copy, .deps and Makefiles are
# build state).
rm -rf "$DEST.new/node_modules/cpu-features/deps" "$DEST.new/node_modules/cpu-features/src" \
  "$DEST.new/node_modules/ssh2/lib/protocol/crypto/src" "$DEST.new/node_modules/ssh2/examples" \
  "$DEST.new/node_modules/ssh2/test" "$DEST.new/node_modules/ssh2/install.js"
# (Only gyp's build/ directories, known by their config.gypi: yargs ships its code in build/.)
find "$DEST.new/node_modules" -type f -path '*/build/config.gypi' | while read -r gypi; do
  b=$(dirname "$gypi")
  find "$b" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  if [ -d "$b/Release" ]; then find "$b/Release" -mindepth 1 -maxdepth 1 ! -name '*.node' -exec rm -rf {} +; fi
done
# Documentation, type declarations, source maps, tests in every package (licences stay).
find "$DEST.new/node_modules" \( -name '*.md' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
  -o -name '*.map' -o -name '*.gyp' -o -name '*.gypi' -o -name '.github' -o -name '.eslintrc*' \
  -o -name '.npmignore' -o -name '.travis.yml' -o -name '.editorconfig' -o -name 'test' -o -name 'tests' \
  -o -name 'benchmarks' -o -name 'bench' -o -name 'docs' -o -name 'example' -o -name 'examples' \) \
  -prune -exec rm -rf {} +
rm -rf "$DEST.new/node_modules/.bin" "$DEST.new/node_modules/.package-lock.json" "$DEST.new/node_modules/.lukko-setup"

# Read-only for everyone but root.
chmod -R u+rwX,go+rX,go-w "$DEST.new"

# 4. Swap the tree in, then the command and the units.
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
trap - EXIT

mkdir -p "$DESTDIR$PREFIX/bin"
cat >"$DESTDIR$PREFIX/bin/lukko" <<EOF
#!/bin/sh
# lukko with its own Node runtime (installed by scripts/install.sh).
exec $APP/node/bin/node $APP/dist/cli/main.js "\$@"
EOF
chmod 0755 "$DESTDIR$PREFIX/bin/lukko"

mkdir -p "$DESTDIR$UNITDIR"
for unit in "$ROOT"/units/lukko*; do
  [ -f "$unit" ] || continue
  target=$DESTDIR$UNITDIR/$(basename "$unit")
  if [ "$APP" = /usr/lib/lukko ]; then
    cp "$unit" "$target"
  else
    sed "s#/usr/lib/lukko/#$APP/#g" "$unit" >"$target"
  fi
  chmod 0644 "$target"
done

case "$UNITDIR" in
  /usr/lib/systemd/system|/usr/local/lib/systemd/system|/etc/systemd/system|/lib/systemd/system) ;;
  *) printf 'install.sh: note: systemd does not look for units in %s; pass --unitdir /etc/systemd/system (or link them)\n' "$UNITDIR" >&2 ;;
esac
size=$(du -sh "$DEST" | cut -f1)
printf 'install.sh: %s (%s), %s/bin/lukko, units in %s\n' "$DEST" "$size" "$DESTDIR$PREFIX" "$DESTDIR$UNITDIR" >&2
if [ -z "$DESTDIR" ]; then
  printf 'install.sh: next: lukko keygen --config /etc/cm4all/lukko/lukko.conf; systemctl daemon-reload; systemctl enable --now lukko.socket\n' >&2
fi
