#!/usr/bin/env bash
# Prepare this machine for pqgate's interop tests (run as root, Debian 12).
#
#  1. Host packages the tests use (iproute2, nftables, tshark, mmdebstrap,
#     iperf3, procps, psmisc, iputils-ping, openssl, chromium for the web
#     admin's browser tests) are installed via apt if missing.
#  2. Peer roots are built with mmdebstrap, once, into a persistent cache
#     outside the repository (default /var/cache/pqgate/peers/<name>,
#     override with PQGATE_PEER_CACHE):
#       sid-strongswan       strongSwan 6.1 (ML-KEM via OpenSSL 3.6)
#       bookworm-strongswan  strongSwan 5.9.8 (classical only)
#       trixie-libreswan     libreswan 5.2 (no ML-KEM, no userspace ESP)
#
# Every root is built into a temporary directory and renamed into place only
# when complete, so an interrupted build never leaves a half root. The file
# <root>/.pqgate-stamp records the recipe and the installed package versions;
# a root whose stamp matches the current recipe is reused (re-runs take
# seconds). Roots are never run directly: tests start each daemon from an
# overlay of the cached root (see test/interop/lib/strongswan.ts).
#
# Usage: bash test/peers/setup.sh [--only NAME ...] [--rebuild NAME ...] [--no-host]
set -euo pipefail

CACHE="${PQGATE_PEER_CACHE:-/var/cache/pqgate/peers}"
ALL_PEERS=(sid-strongswan bookworm-strongswan trixie-libreswan)
# Bump when the recipe changes in a way that is not visible in the package list.
RECIPE_VERSION=1

log() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (mmdebstrap, network namespaces)"

only=() rebuild=() do_host=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --only) only+=("$2"); shift 2 ;;
    --rebuild) rebuild+=("$2"); shift 2 ;;
    --no-host) do_host=0; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

# ---------------------------------------------------------------- mirror
# Use the Debian mirror host the machine's own apt is configured with (it is
# the one host that is reachable); fall back to deb.debian.org.
mirror_base() {
  local uri
  uri=$(grep -rhoE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
          /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -oE 'https?://[^[:space:]]+/debian' | grep -v -- '-security' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${PQGATE_DEBIAN_MIRROR:-$(mirror_base)}"

# ---------------------------------------------------------------- host packages
host_packages() {
  local want=(iproute2 nftables tshark mmdebstrap iperf3 procps psmisc util-linux iputils-ping openssl chromium)
  local missing=() p
  for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "host packages present"
    return
  fi
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark pulls wireshark-common, which asks whether non-root users may capture.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

# ---------------------------------------------------------------- peer recipes
# name -> "suite|packages"
recipe() {
  local ss_pkgs="strongswan-charon,strongswan-swanctl,libstrongswan-extra-plugins,libstrongswan-standard-plugins,libcharon-extra-plugins,strongswan-pki,iproute2,iperf3,nftables,procps"
  case "$1" in
    sid-strongswan)      echo "sid|$ss_pkgs" ;;
    bookworm-strongswan) echo "bookworm|$ss_pkgs" ;;
    trixie-libreswan)    echo "trixie|libreswan,iproute2,nftables,procps" ;;
    *) return 1 ;;
  esac
}

recipe_id() { # stable text identifying what a root was built from
  printf 'recipe=%s\n%s\nmirror=%s\n' "$RECIPE_VERSION" "$(recipe "$1")" "$MIRROR"
}

stamp_ok() { # $1=root dir, $2=name
  local s="$1/.pqgate-stamp"
  [[ -f $s ]] || return 1
  [[ "$(sed -n '1,/^---$/p' "$s" | sed '$d')" == "$(recipe_id "$2")" ]]
}

# Remove a directory tree only when nothing is mounted below it (a leftover
# mount from an interrupted mmdebstrap would otherwise let rm reach the host's
# /dev or /proc).
safe_rm() {
  local d="$1"
  [[ -e $d ]] || return 0
  local real; real=$(realpath -- "$d")
  [[ $real == "$CACHE"/* ]] || { log "refusing to delete $real (outside $CACHE)"; return 1; }
  if findmnt -rn -o TARGET | awk -v p="$real" 'index($0, p"/") == 1 || $0 == p' | grep -q .; then
    log "mounts remain under $real; not deleting it (see: findmnt | grep $real)"
    return 1
  fi
  rm -rf --one-file-system -- "$real"
}

# Stop an mmdebstrap session (by its process group) and remove its partial tree.
interrupted() {
  local pg="$1" tmp="$2" idfile="$3" i
  log "interrupted: stopping mmdebstrap (process group $pg)"
  set +e  # best effort from here on
  kill -TERM -- "-$pg" 2>/dev/null
  for i in $(seq 50); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pg" 2>/dev/null
  wait "$pg" 2>/dev/null
  rm -f "$idfile" "$tmp.pgid"
  safe_rm "$tmp" && log "removed partial tree $tmp"
  exit 130
}

build_peer() {
  local name="$1" suite pkgs
  IFS='|' read -r suite pkgs < <(recipe "$name") || die "unknown peer $name"
  local final="$CACHE/$name"
  local force=0 r
  for r in "${rebuild[@]}"; do [[ $r == "$name" ]] && force=1; done
  if [[ $force -eq 0 && -d $final ]] && stamp_ok "$final" "$name"; then
    log "$name: cached ($(grep -E '^(strongswan-charon|libreswan) ' "$final/.pqgate-stamp" | head -n1))"
    return
  fi
  local tmp="$CACHE/.build-$name-$$"
  safe_rm "$tmp" || return 1
  log "$name: building $suite root with mmdebstrap from $MIRROR (this takes a minute)"
  local t0=$SECONDS
  # The stamp is written by a customize hook so it exists only in a complete root.
  # Its first block is the recipe (compared on re-runs), then the package versions.
  local idfile; idfile=$(mktemp)
  recipe_id "$name" > "$idfile"
  # mmdebstrap mounts /proc, /sys and /dev into the target while it builds. It
  # runs in its own private mount namespace (unshare), so those mounts never
  # appear on the host and vanish with it, even if it is killed; and in its own
  # session (setsid), so an interrupt can stop it and everything it started.
  setsid unshare --mount --propagation private -- \
    mmdebstrap --variant=apt --mode=root \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --aptopt='Acquire::Retries "3"' \
        --include="$pkgs" \
        --customize-hook="cp '$idfile' \"\$1/.pqgate-stamp\"; echo --- >> \"\$1/.pqgate-stamp\"" \
        --customize-hook='chroot "$1" dpkg-query -W -f="\${Package} \${Version}\n" >> "$1/.pqgate-stamp"' \
        "$suite" "$tmp" "$MIRROR" >"$CACHE/.build-$name.log" 2>&1 &
  local mm=$!
  # If this script is killed outright, the next run finds the session by this file.
  echo "$mm" > "$tmp.pgid"
  trap "interrupted $mm '$tmp' '$idfile'" INT TERM HUP
  local rc=0
  wait "$mm" || rc=$?
  trap - INT TERM HUP
  rm -f "$tmp.pgid"
  if [[ $rc -ne 0 ]]; then
    rm -f "$idfile"
    log "$name: mmdebstrap failed (exit $rc); last lines of $CACHE/.build-$name.log:"
    tail -n 30 "$CACHE/.build-$name.log" >&2
    safe_rm "$tmp" || true
    return 1
  fi
  rm -f "$idfile"
  # Tests create these mount points inside the per-instance overlay; make sure they exist.
  mkdir -p "$tmp/proc" "$tmp/dev" "$tmp/run" "$tmp/tmp"
  # Atomic swap: the old root (if any) is moved aside first, then removed.
  if [[ -e $final ]]; then
    mv -T -- "$final" "$CACHE/.old-$name-$$"
  fi
  mv -T -- "$tmp" "$final"
  safe_rm "$CACHE/.old-$name-$$" || true
  log "$name: built in $((SECONDS - t0)) s ($(du -sh --one-file-system "$final" | cut -f1)); $(grep -E '^(strongswan-charon|libreswan) ' "$final/.pqgate-stamp" | head -n1)"
}

# Leftovers of interrupted builds by setup runs that no longer exist. If such a
# run was killed outright, its mmdebstrap session may still be writing: stop it
# first (its process group id is in <tree>.pgid; it is ours, started by setup.sh).
sweep_stale_builds() {
  local d pid pg i
  for d in "$CACHE"/.build-*-[0-9]* "$CACHE"/.old-*-[0-9]*; do
    [[ -d $d ]] || continue
    pid=${d##*-}
    kill -0 "$pid" 2>/dev/null && continue
    if [[ -f $d.pgid ]]; then
      pg=$(cat "$d.pgid")
      if [[ $pg =~ ^[0-9]+$ ]] && kill -0 -- "-$pg" 2>/dev/null; then
        log "stopping orphaned mmdebstrap session $pg of a killed setup run"
        kill -TERM -- "-$pg" 2>/dev/null || true
        for i in $(seq 50); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pg" 2>/dev/null || true
        sleep 0.5
      fi
      rm -f "$d.pgid"
    fi
    log "removing stale partial tree $d"
    safe_rm "$d" || true
  done
}

# ---------------------------------------------------------------- main
t_start=$SECONDS
[[ $do_host -eq 1 ]] && host_packages
mkdir -p "$CACHE"
# One setup at a time per cache (parallel test runs share the roots).
exec 9>"$CACHE/.lock"
flock 9
sweep_stale_builds
if [[ ${#only[@]} -gt 0 ]]; then targets=("${only[@]}"); else targets=("${ALL_PEERS[@]}"); fi
rc=0
for name in "${targets[@]}"; do
  build_peer "$name" || rc=1
done
log "done in $((SECONDS - t_start)) s (cache: $CACHE)"
exit $rc
