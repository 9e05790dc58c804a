# Signed update bundles (docs/upgrade.md), sourced by image/build.sh:
#   bundle_install_trust ROOTFS  trust anchors into the staged rootfs (/usr/share/pqgate/trust) and
#                                /usr/share/pqgate/release.json (board, version, security version)
#   bundle_make                  $OUT/pqgate-<board>-<version>.pqb from rootfs.squashfs, vmlinuz, initrd.img
#
# PQGATE_SIGNING_KEYS=DIR (from `pqgate bundle keygen --dir DIR`: root.pub, signing.key, keylist.pqkl)
# signs the bundle and installs DIR's root key as the image's trust anchor. Unset: a DEVELOPMENT build —
# unsigned bundle and a trust store marked dev, which accepts unsigned firmware and says so on the web admin
# and in `pqgate upgrade status`. root.key is never needed here (keep it offline).
# PQGATE_VERSION (default: package.json version) and PQGATE_SECURITY_VERSION (default: image/security-version).

bundle_cli() { node "$REPO/dist/firmware/cli.js" bundle "$@"; }

bundle_version() { printf '%s\n' "${PQGATE_VERSION:-$(json "$REPO/package.json" j.version)}"; }
bundle_security_version() { printf '%s\n' "${PQGATE_SECURITY_VERSION:-$(tr -d ' \n' < "$IMAGE_DIR/security-version")}"; }

bundle_install_trust() {
  local r=$1 tmp f
  tmp=$(mktemp -d)
  if [[ -n "${PQGATE_SIGNING_KEYS:-}" ]]; then
    for f in root.pub signing.key keylist.pqkl; do [[ -f "$PQGATE_SIGNING_KEYS/$f" ]] || die "PQGATE_SIGNING_KEYS=$PQGATE_SIGNING_KEYS has no $f (create one with: pqgate bundle keygen --dir DIR)"; done
    bundle_cli trust --out "$tmp" --keys "$PQGATE_SIGNING_KEYS" >&2 || die "trust store from $PQGATE_SIGNING_KEYS failed"
  else
    info "PQGATE_SIGNING_KEYS unset: DEVELOPMENT build (unsigned bundle; the image accepts unsigned firmware)"
    bundle_cli trust --out "$tmp" --dev >&2 || die "development trust store failed"
  fi
  stage_mkdir "$r" usr/share/pqgate/trust/roots
  while IFS= read -r -d '' f; do stage_install "$r" "$tmp/$f" "usr/share/pqgate/trust/$f" 0644; done < <(cd "$tmp" && find . -type f -printf '%P\0')
  node -e 'process.stdout.write(JSON.stringify({ board: process.argv[1], version: process.argv[2], securityVersion: Number(process.argv[3]), build: process.argv[4] }) + "\n")' \
    "$BOARD" "$(bundle_version)" "$(bundle_security_version)" "$([[ -n "${PQGATE_SIGNING_KEYS:-}" ]] && echo release || echo dev)" > "$tmp/release.json"
  stage_install "$r" "$tmp/release.json" usr/share/pqgate/release.json 0644
  rm -rf --one-file-system "$tmp"
}

bundle_make() {
  local out
  out="$OUT/pqgate-$BOARD-$(bundle_version).pqb"
  rm -f "$OUT"/pqgate-"$BOARD"-*.pqb
  bundle_cli make --board "$BOARD" --version "$(bundle_version)" --security-version "$(bundle_security_version)" --from "$OUT" --out "$out" \
    ${PQGATE_SIGNING_KEYS:+--keys "$PQGATE_SIGNING_KEYS"} >&2 || die "bundle failed"
  info "update bundle: $out ($(( $(stat -c %s "$out") / 1024 )) KiB)"
}
