#!/usr/bin/env bash
# `npm start`: install dependencies if needed, build, and run the gateway on
# the embedded default configuration (listens on UDP 500/4500 on every local
# address, no tunnels until you add some; see docs/config.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "==> installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
echo "==> building"
npm run build --silent
cat <<'MSG'
==> starting pqgate on the embedded default configuration
    status:        node dist/firmware/cli.js status
    add tunnels:   write a config (docs/config.md), then
                   node dist/firmware/cli.js daemon --config /etc/pqgate/pqgate.json
    stop:          Ctrl-C (deletes every IKE SA cleanly)
MSG
exec node dist/firmware/cli.js daemon --default-config "$@"
