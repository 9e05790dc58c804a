#!/usr/bin/env bash
# `npm start`: install dependencies if needed, build, then run the gateway on
# its embedded configuration database (./data/pqgate.db, created on first
# start from the embedded default configuration: listen on UDP 500/4500 on
# every address, no tunnels) and, once the web admin is built
# (dist/webui/server.js), the web admin beside it. Prints where to go next.
#
# Environment: PQGATE_DATA (default ./data), PQGATE_WEB_LISTEN (default
# 127.0.0.1:8443), PQGATE_SOCKET (control socket; default as `pqgate`
# uses it: /run/pqgate/control.sock for root). Extra arguments go to
# `pqgate daemon` (e.g. --log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "==> installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
echo "==> building"
npm run build --silent

data=$(realpath -m "${PQGATE_DATA:-./data}")
mkdir -p "$data"
chmod 700 "$data"
# The control socket `pqgate` finds by default (firmware/config/defaults.ts defaultControlSocket).
if [[ -z "${PQGATE_SOCKET:-}" ]]; then
  if [[ $(id -u) -eq 0 ]]; then PQGATE_SOCKET=/run/pqgate/control.sock
  elif [[ -n "${XDG_RUNTIME_DIR:-}" ]]; then PQGATE_SOCKET=$XDG_RUNTIME_DIR/pqgate/control.sock
  else PQGATE_SOCKET=${TMPDIR:-/tmp}/pqgate-$(id -u)/control.sock; fi
fi
export PQGATE_SOCKET
sockdir=$(dirname "$PQGATE_SOCKET")
web_socket="$(dirname "$sockdir")/$(basename "$sockdir")-web/web.sock"
pqgate=(node dist/firmware/cli.js)

daemon_pid=
web_pid=
stop() {
  trap - INT TERM
  # Only the processes this script started, by PID.
  [[ -n "$web_pid" ]] && kill -TERM "$web_pid" 2>/dev/null || true
  [[ -n "$daemon_pid" ]] && kill -TERM "$daemon_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM

echo "==> starting pqgate on $data/pqgate.db"
"${pqgate[@]}" daemon --db "$data/pqgate.db" --socket "$PQGATE_SOCKET" --web-socket "$web_socket" "$@" &
daemon_pid=$!
for _ in $(seq 1 200); do
  [[ -S "$PQGATE_SOCKET" ]] && break
  if ! kill -0 "$daemon_pid" 2>/dev/null; then wait "$daemon_pid" || exit $?; exit 1; fi
  sleep 0.1
done

web_url=
if [[ -f dist/webui/server.js ]]; then
  listen=${PQGATE_WEB_LISTEN:-127.0.0.1:8443}
  node dist/webui/server.js --socket "$web_socket" --listen "$listen" --data "$data/web" &
  web_pid=$!
  web_url="https://$listen/"
fi

setup=$("${pqgate[@]}" users list --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).length===0?"yes":"no")}catch{console.log("?")}})' || echo '?')
cat <<MSG
==> pqgate is running
    configuration:  $data/pqgate.db (every change is a revision: pqgate config history)
    control socket: $PQGATE_SOCKET
MSG
if [[ -n "$web_url" ]]; then
  echo "    web admin:      $web_url (self-signed certificate, generated on first start)"
else
  echo "    web admin:      not built (no dist/webui/server.js)"
fi
if [[ "$setup" == yes ]]; then
  if [[ -n "$web_url" ]]; then
    echo "    next:           first boot: open $web_url and create the first administrator"
  else
    echo "    next:           first boot: node dist/firmware/cli.js users add admin"
  fi
fi
cat <<'MSG'
    status:         node dist/firmware/cli.js status
    add a tunnel:   node dist/firmware/cli.js config tunnel add cf1 --preset cloudflare \
                      --param tunnel_id=ID --param account_id=ACCOUNT \
                      --set remote_addr=CLOUDFLARE_ANYCAST_IP --set inside_addr=10.100.0.9/31 --psk-file psk.txt
    stop:           Ctrl-C (deletes every IKE SA cleanly)
MSG

# Run until the daemon exits (or Ctrl-C); the web admin goes with it.
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
stop
exit "$status"
