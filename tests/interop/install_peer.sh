#!/usr/bin/env bash
# Install the third-party interop peer (@ethereumjs/client 0.10.5) into a git-ignored cache.
# Idempotent: does nothing when the pinned version is already there. If npm or the registry
# is unavailable, prints a warning and exits 0: the interop tests then skip with that reason.
set -u
here="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$here/.cache/ethereumjs"
version="0.10.5"
marker="$dest/node_modules/@ethereumjs/client/package.json"
if [ -f "$marker" ] && grep -q "\"version\": \"$version\"" "$marker"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install_peer: npm not found; interop tests will be skipped" >&2
  exit 0
fi
mkdir -p "$dest"
cd "$dest"
[ -f package.json ] || echo '{"name":"ethp2p-interop-peer","private":true}' > package.json
if ! npm install --no-audit --no-fund --loglevel=error "@ethereumjs/client@$version" >npm-install.log 2>&1; then
  echo "install_peer: npm install failed (see $dest/npm-install.log); interop tests will be skipped" >&2
fi
exit 0
