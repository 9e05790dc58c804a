#!/usr/bin/env bash
# pqgate's full test run (`npm test`). Meant for root on a fresh Debian 12
# with Node >= 20.19:
#   1. npm ci          when node_modules is missing or older than package-lock.json
#   2. peers           bash test/peers/setup.sh (host packages + cached peer roots)
#   3. build           npm run build
#   4. unit tests      npx vitest run --project unit (+ test/crypto, sa, security with PQGATE_CRYPTO_NATIVE=0)
#   5. interop tests   npx vitest run --project interop (real strongSwan/libreswan peers)
#   6. browser tests   npx vitest run --project e2e (web admin in headless Chromium)
#   7. images          npm run image (x86_64, arm64), then npx vitest run --project image (QEMU)
# Every stage prints its elapsed time; a summary follows; the exit status is
# non-zero if any stage failed. Without root, stages 2 and 5 cannot run: they
# are reported as SKIPPED (the interop tests skip themselves with a reason).
#
# Environment: PQGATE_PEER_CACHE (peer roots, default /var/cache/pqgate/peers),
# PQGATE_TEST_LOG_DIR (per-stage logs, default test-artifacts/run-all),
# PQGATE_STAGE_TIMEOUT (seconds per test stage, default 1500; the QEMU stage: PQGATE_IMAGE_STAGE_TIMEOUT, default 3000), PQGATE_SIGNING_KEYS (image signing keys;
# default: a throwaway set made under test-artifacts/ci-signing-keys).
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_DIR="${PQGATE_TEST_LOG_DIR:-$ROOT/test-artifacts/run-all}"
STAGE_TIMEOUT="${PQGATE_STAGE_TIMEOUT:-1500}"
mkdir -p "$LOG_DIR"

T_ALL=$SECONDS
declare -a NAMES=() RESULTS=() TIMES=() NOTES=()
FAILED=0

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

# run_stage NAME LOGFILE CMD...: run with a timeout, tee to a log, record result.
run_stage() {
  local name="$1" log="$2"; shift 2
  bold "==> [$(date +%H:%M:%S)] $name: $*"
  local t0=$SECONDS rc
  timeout --foreground -k 30 "$STAGE_TIMEOUT" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local dt=$((SECONDS - t0))
  NAMES+=("$name"); TIMES+=("$dt")
  if [[ $rc -eq 0 ]]; then
    RESULTS+=("ok")
  elif [[ $rc -eq 124 ]]; then
    RESULTS+=("FAILED (timeout ${STAGE_TIMEOUT}s)"); FAILED=1
  else
    RESULTS+=("FAILED (exit $rc)"); FAILED=1
  fi
  # vitest's own summary lines, for the final table.
  NOTES+=("$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null | grep -E '^\s*(Test Files|Tests) ' | sed -E 's/^\s+//; s/\s+/ /g' | paste -sd ';' -)")
  bold "<== $name: ${RESULTS[-1]} in ${dt}s"
  return "$rc"
}

skip_stage() {
  NAMES+=("$1"); RESULTS+=("SKIPPED"); TIMES+=(0); NOTES+=("$2")
  bold "--- $1: SKIPPED ($2)"
}

# ------------------------------------------------------------------ preflight
if ! command -v node >/dev/null; then
  echo "node not found: install Node.js >= 20.19 (e.g. from deb.nodesource.com)" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "Node.js $(node -v) is too old: pqgate needs >= 20.19" >&2
  exit 1
fi
IS_ROOT=0; [[ $(id -u) -eq 0 ]] && IS_ROOT=1
bold "pqgate test run: $(node -v), $(uname -r), root=$IS_ROOT, logs in $LOG_DIR"

# ------------------------------------------------------------------ 1. dependencies
DEPS_OK=1
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  run_stage "npm ci" "$LOG_DIR/npm-ci.log" npm ci --no-audit --no-fund || DEPS_OK=0
else
  skip_stage "npm ci" "node_modules up to date with package-lock.json"
fi

if [[ $DEPS_OK -eq 1 ]]; then
  # ---------------------------------------------------------------- 2. peers
  if [[ $IS_ROOT -eq 1 ]]; then
    run_stage "peers" "$LOG_DIR/peers.log" bash test/peers/setup.sh || true
  else
    skip_stage "peers" "not root"
  fi
  # ---------------------------------------------------------------- 3. build
  run_stage "build" "$LOG_DIR/build.log" npm run build --silent || true
  # ---------------------------------------------------------------- 4./5. tests
  # Run both test stages even if an earlier one failed: more information per run.
  run_stage "unit tests" "$LOG_DIR/unit.log" npx vitest run --project unit || true
  # The crypto, key schedule and secrets tests again on the node:crypto fallback (no native fast path).
  run_stage "unit tests (node:crypto fallback)" "$LOG_DIR/unit-nodecrypto.log" env PQGATE_CRYPTO_NATIVE=0 npx vitest run --project unit test/crypto test/sa test/security || true
  if [[ $IS_ROOT -eq 1 ]]; then
    run_stage "interop tests" "$LOG_DIR/interop.log" npx vitest run --project interop || true
  else
    run_stage "interop tests (not root: they skip)" "$LOG_DIR/interop.log" npx vitest run --project interop || true
  fi
  # Web admin in Debian's headless Chromium (test/webui/e2e; skips without /usr/bin/chromium).
  run_stage "browser tests" "$LOG_DIR/e2e.log" npx vitest run --project e2e || true
  # Firmware images (x86_64, arm64) from pinned Debian packages, booted through UEFI in QEMU (root only).
  if [[ $IS_ROOT -eq 1 ]]; then
    # Throwaway CI signing keys (docs/upgrade.md): the images and their .pqb bundles are signed, the QEMU upgrade tests use the same set.
    if [[ -z "${PQGATE_SIGNING_KEYS:-}" ]]; then
      export PQGATE_SIGNING_KEYS="$ROOT/test-artifacts/ci-signing-keys"
      rm -rf --one-file-system "$PQGATE_SIGNING_KEYS" && node dist/firmware/cli.js bundle keygen --dir "$PQGATE_SIGNING_KEYS" --valid-days 30 >/dev/null
    fi
    if run_stage "image build" "$LOG_DIR/image-build.log" bash -c 'bash image/setup-host.sh && npm run image --silent -- --board x86_64 --skip-tsc && npm run image --silent -- --board arm64 --skip-tsc'; then
      # The QEMU stage boots several VMs under TCG (boot, reboot, site-to-site, strongSwan, upgrade/fallback/power cuts):
      # its own, longer budget (PQGATE_IMAGE_STAGE_TIMEOUT, default 3000 s).
      STAGE_TIMEOUT="${PQGATE_IMAGE_STAGE_TIMEOUT:-3000}" run_stage "image tests (QEMU)" "$LOG_DIR/image-tests.log" npx vitest run --project image || true
    else
      skip_stage "image tests (QEMU)" "image build failed"
    fi
  else
    skip_stage "image build + QEMU tests" "not root"
  fi
else
  bold "dependencies could not be installed; skipping the remaining stages"
fi

# ------------------------------------------------------------------ summary
echo
bold "Summary ($((SECONDS - T_ALL))s total)"
for i in "${!NAMES[@]}"; do
  printf '  %-36s %-28s %5ss  %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}" "${NOTES[$i]}"
done
if [[ $FAILED -ne 0 ]]; then
  bold "FAILED (logs: $LOG_DIR)"
  exit 1
fi
bold "all stages passed"
