#!/usr/bin/env bash
# Start a local js-ipfs daemon (npm `ipfs`, see package.json) for `veilchain --ipfs ...`.
#   scripts/start_jsipfs.sh [REPO_DIR] [API_PORT]     (defaults: .veilchain/jsipfs 5001)
# Inits the repo on first use (--profile test --empty-repo), puts the API on 127.0.0.1:PORT,
# empties Swarm and Bootstrap, then runs `jsipfs daemon --offline` in the foreground.
# Use it with: veilchain --ipfs /ip4/127.0.0.1/tcp/PORT ...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$root/.veilchain/jsipfs}"
port="${2:-5001}"
cli="$root/node_modules/ipfs/src/cli.js"
polyfill="$root/scripts/ipfs_polyfill.cjs"
[ -f "$cli" ] || { echo "js-ipfs missing: run 'make install' (npm install) first" >&2; exit 2; }
export IPFS_PATH="$repo"
if [ ! -f "$repo/config" ]; then
  mkdir -p "$repo"
  node --require "$polyfill" "$cli" init --profile test --empty-repo >/dev/null
fi
node -e '
const fs = require("fs");
const [path, port] = process.argv.slice(1);
const c = JSON.parse(fs.readFileSync(path, "utf8"));
Object.assign(c.Addresses, { API: `/ip4/127.0.0.1/tcp/${port}`, Swarm: [], Gateway: "", RPC: "" });
c.Bootstrap = [];
fs.writeFileSync(path, JSON.stringify(c, null, 2));
' "$repo/config" "$port"
exec node --require "$polyfill" "$cli" daemon --offline
