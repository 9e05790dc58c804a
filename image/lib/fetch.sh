# Pinned downloads: Debian packages through apt (a private apt state per
# architecture, so arm64 packages come from the same archive without touching
# the build machine's apt) and the Node.js binary packages through npm.
#
# packages.lock (per board) pins every download:
#   deb <arch> <package> <version> <sha256>
#   npm - <package> <version> <sha256>
# Suites: bookworm, bookworm-updates, bookworm-security, bookworm-backports
# and trixie (pinned to priority 50: only the board's `firmware` package, by
# suite, comes from there).
# Backports is NotAutomatic in its Release file (apt priority 100), so only a
# package that exists nowhere else resolves there: the x86_64 board's 6.12
# kernel, whose zstd payload boots ~3 s faster under TCG than 6.1's XZ one
# (docs/image.md "Boot time").
# A build downloads exactly these and verifies each SHA256; `--update-lock`
# re-resolves the newest versions (Debian removes superseded kernel and
# security versions from the archive, so a lock has to be refreshed now and
# then; the cache keeps what was fetched).

CACHE=${PQGATE_IMAGE_CACHE:-/var/cache/pqgate/image}

mirror_base() {
  local uri
  uri=$(grep -rhoE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -oE 'https?://[^[:space:]]+/debian' | head -n1 || true)
  echo "${PQGATE_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

# apt_for ARCH ARGS...: apt-get with a private configuration for ARCH.
_apt_opts() {
  local a=$1 d="$CACHE/apt/$1"
  printf '%s\n' -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/sources.list.d" \
    -o "Dir::Etc::Preferences=$d/preferences" -o "Dir::Etc::PreferencesParts=$d/preferences.d" \
    -o "Dir::State::Lists=$d/lists" -o "Dir::State::Status=$d/status" -o "Dir::Cache=$d/cache" \
    -o "APT::Architecture=$a" -o "APT::Architectures::=$a" -o "APT::Sandbox::User=root" -o "quiet=1"
}
apt_for() { local a=$1; shift; local -a o; mapfile -t o < <(_apt_opts "$a"); apt-get "${o[@]}" "$@"; }
aptcache_for() { local a=$1; shift; local -a o; mapfile -t o < <(_apt_opts "$a"); apt-cache "${o[@]}" "$@"; }

# apt_prepare ARCH [force]: private apt state; `apt-get update` when missing or forced.
apt_prepare() {
  local a=$1 force=${2:-} d="$CACHE/apt/$1" m sec
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/sources.list.d" "$d/preferences.d"
  [[ -f "$d/status" ]] || : > "$d/status"
  m=$(mirror_base)
  sec=${m%/debian}/debian-security
  cat > "$d/sources.list.new" <<EOF
deb [arch=$a signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m bookworm main
deb [arch=$a signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m bookworm-updates main
deb [arch=$a signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $sec bookworm-security main
deb [arch=$a signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m bookworm-backports main
deb [arch=$a signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m trixie main
EOF
  # trixie only for what a board asks for by suite (the QEMU board model's
  # UEFI firmware): below bookworm (500) and backports (100), so it is never
  # the candidate of a package bookworm has.
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 50\n' > "$d/preferences.new"
  if ! cmp -s "$d/preferences.new" "$d/preferences"; then mv "$d/preferences.new" "$d/preferences"; force=1; else rm -f "$d/preferences.new"; fi
  if ! cmp -s "$d/sources.list.new" "$d/sources.list"; then mv "$d/sources.list.new" "$d/sources.list"; force=1; else rm -f "$d/sources.list.new"; fi
  if [[ -n "$force" ]] || ! compgen -G "$d/lists/*_Packages*" >/dev/null; then
    info "apt update ($a)"
    apt_for "$a" update >/dev/null || die "apt-get update for $a failed"
  fi
}

# deb_path ARCH PKG VERSION: where a pinned .deb lives in the cache.
deb_path() { local v=${3//:/%3a}; echo "$CACHE/debs/$1/${2}_${v}_$1.deb"; }

# fetch_deb ARCH PKG VERSION SHA256: download (once) and verify.
fetch_deb() {
  local a=$1 p=$2 v=$3 want=$4 f; f=$(deb_path "$a" "$p" "$v")
  if [[ -f "$f" ]] && [[ "$(sha256 "$f")" == "$want" ]]; then return 0; fi
  mkdir -p "$(dirname "$f")"
  apt_prepare "$a"
  local tmp; tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
  if ! (cd "$tmp" && apt_for "$a" download "$p=$v" >/dev/null 2>"$tmp/err"); then
    # The lists may be older than the lock: refresh once and retry.
    apt_prepare "$a" force
    (cd "$tmp" && apt_for "$a" download "$p=$v" >/dev/null 2>"$tmp/err") || {
      cat "$tmp/err" >&2; rm -rf "$tmp"
      die "cannot download $p=$v ($a): the archive may have dropped this version; run with --update-lock"
    }
  fi
  local got; got=$(ls "$tmp"/*.deb)
  local sum; sum=$(sha256 "$got")
  if [[ "$sum" != "$want" ]]; then rm -rf "$tmp"; die "checksum mismatch for $p=$v ($a): got $sum, lock says $want"; fi
  mv "$got" "$f"
  rm -rf "$tmp"
}

# fetch_npm PKG VERSION SHA256: `npm pack` the tarball (once) and verify.
npm_path() { echo "$CACHE/npm/$1-$2.tgz"; }
fetch_npm() {
  local p=$1 v=$2 want=$3 f; f=$(npm_path "$p" "$v")
  if [[ -f "$f" ]] && [[ "$(sha256 "$f")" == "$want" ]]; then return 0; fi
  mkdir -p "$CACHE/npm"
  info "npm pack $p@$v"
  (cd "$CACHE/npm" && npm pack "$p@$v" --silent >/dev/null) || die "npm pack $p@$v failed"
  local sum; sum=$(sha256 "$f")
  [[ "$sum" == "$want" ]] || die "checksum mismatch for npm $p@$v: got $sum, lock says $want"
}

# update_lock BOARD_DIR: resolve the newest versions of the board's package list and write packages.lock.
update_lock() {
  local bd=$1 board_json="$1/board.json" a lock="$1/packages.lock" p v sha npmpkg npmver f
  a=$(json "$board_json" j.debianArch)
  apt_prepare "$a" force
  {
    echo "# Pinned downloads for board $(json "$board_json" j.name); verified by image/build.sh."
    echo "# Regenerate with: npm run image -- --board $(json "$board_json" j.name) --update-lock"
    while read -r p; do
      [[ -n "$p" ]] || continue
      v=$(aptcache_for "$a" policy "$p" | awk '/Candidate:/ {print $2}')
      [[ -n "$v" && "$v" != "(none)" ]] || die "no candidate for $p ($a)"
      sha=$(aptcache_for "$a" show "$p=$v" | awk '/^SHA256:/ {print $2; exit}')
      [[ -n "$sha" ]] || die "no SHA256 for $p=$v"
      echo "deb $a $p $v $sha"
    done < <(json "$board_json" 'j.packages.concat([j.kernel.package])')
    # The QEMU board model's UEFI firmware (board.json `firmware`): the newest
    # version in the suite the board names, whatever the pins say.
    local fwpkg fwsuite
    fwpkg=$(json "$board_json" 'j.firmware?.package ?? ""')
    if [[ -n "$fwpkg" ]]; then
      fwsuite=$(json "$board_json" j.firmware.suite)
      v=$(aptcache_for "$a" madison "$fwpkg" | awk -F'|' -v s=" $fwsuite/main" 'index($3, s) {gsub(/ /, "", $2); print $2; exit}')
      [[ -n "$v" ]] || die "no $fwpkg in $fwsuite ($a)"
      sha=$(aptcache_for "$a" show "$fwpkg=$v" | awk '/^SHA256:/ {print $2; exit}')
      [[ -n "$sha" ]] || die "no SHA256 for $fwpkg=$v"
      echo "deb $a $fwpkg $v $sha"
    fi
    npmpkg=$(json "$board_json" j.node.package); npmver=$(json "$board_json" j.node.version)
    f=$(npm_path "$npmpkg" "$npmver")
    if [[ ! -f "$f" ]]; then mkdir -p "$CACHE/npm"; (cd "$CACHE/npm" && npm pack "$npmpkg@$npmver" --silent >/dev/null) || die "npm pack failed"; fi
    echo "npm - $npmpkg $npmver $(sha256 "$f")"
  } > "$lock.new"
  mv "$lock.new" "$lock"
  info "wrote $lock ($(grep -c '^deb ' "$lock") Debian packages)"
}

# fetch_all BOARD_DIR: fetch and verify everything in packages.lock; prints nothing.
fetch_all() {
  local lock="$1/packages.lock" kind a p v sha
  [[ -f "$lock" ]] || die "$lock missing: run with --update-lock"
  while read -r kind a p v sha; do
    case "$kind" in
      deb) fetch_deb "$a" "$p" "$v" "$sha" ;;
      npm) fetch_npm "$p" "$v" "$sha" ;;
      ''|'#'*) ;;
      *) die "bad lock line: $kind $a $p" ;;
    esac
  done < "$lock"
}

# install_board_firmware BOARD_JSON OUT: the QEMU board model's UEFI firmware
# (board.json `firmware`: a pinned package and the files taken from it) into
# OUT/firmware/, where board.json's qemu.firmwareCode/firmwareVars point
# (paths relative to image/out/<board>). Not part of the image: it stands in
# for the device's own firmware when the image is booted under QEMU.
install_board_firmware() {
  local bj=$1 out=$2 p v d name src
  p=$(json "$bj" 'j.firmware?.package ?? ""')
  [[ -n "$p" ]] || return 0
  v=$(lock_version "$BOARD_DIR" "$p")
  [[ -n "$v" ]] || die "firmware package $p is not in packages.lock (run with --update-lock)"
  d=$(unpack_deb "$ARCH" "$p" "$v")
  mkdir -p "$out/firmware"
  while IFS=$'\t' read -r name src; do
    [[ -n "$name" && "$name" != */* && "$src" != /* && "$src" != *..* ]] || die "bad firmware file entry '$name' -> '$src'"
    [[ -f "$d/$src" && ! -L "$d/$src" ]] || die "$p $v has no regular file $src"
    install -m 0644 "$d/$src" "$out/firmware/$name"
  done < <(json "$bj" 'Object.entries(j.firmware.files).map(([k, v]) => k + "\t" + v).join("\n")')
  info "board firmware: $p $v ($(ls "$out/firmware" | tr '\n' ' '))"
}

# lock_version BOARD_DIR PKG: the pinned version of PKG.
lock_version() { awk -v p="$2" '($1 == "deb" || $1 == "npm") && $3 == p {print $4}' "$1/packages.lock"; }

# unpack_deb ARCH PKG VERSION: extract (once) into the cache; prints the directory.
unpack_deb() {
  local a=$1 p=$2 v=$3 f d; f=$(deb_path "$a" "$p" "$v")
  d="$CACHE/unpacked/$a/${p}_${v//:/%3a}"
  if [[ ! -f "$d/.done" ]]; then
    safe_rm_tree "$d"
    mkdir -p "$d"
    dpkg-deb -x "$f" "$d" || die "cannot unpack $f"
    touch "$d/.done"
  fi
  echo "$d"
}
