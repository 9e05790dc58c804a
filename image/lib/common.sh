# Shared helpers for the image build (sourced by image/build.sh and the
# board hooks). Bash, `set -euo pipefail` in the caller.
#
# Safety rule of the whole build: the staging trees hold links such as
# lib -> usr/lib (ours, relative) but packages also ship absolute links
# (/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/...). A write through
# an absolute link inside a staging tree would land on the build machine, so
# every write into a staging tree goes through stage_path(), which resolves
# the destination relative to the staging root and refuses anything that
# leaves it.

T_START=${T_START:-$SECONDS}

# ------------------------------------------------------------------ output
_step=0
step() { # step "message": numbered progress line with elapsed time
  _step=$((_step + 1))
  printf '[image %4ss] (%d) %s\n' "$((SECONDS - T_START))" "$_step" "$*" >&2
}
info() { printf '[image %4ss]     %s\n' "$((SECONDS - T_START))" "$*" >&2; }
die() { printf '[image %4ss] ERROR: %s\n' "$((SECONDS - T_START))" "$*" >&2; exit 1; }

# json FILE EXPR: evaluate a JS expression on the parsed JSON (bound to `j`).
# Arrays print one element a line, objects as JSON, scalars as text.
json() {
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const v = eval(process.argv[2]);
    if (v === undefined || v === null) process.exit(3);
    if (Array.isArray(v)) { for (const x of v) console.log(typeof x === "string" ? x : JSON.stringify(x)); }
    else if (typeof v === "object") console.log(JSON.stringify(v));
    else console.log(String(v));
  ' "$1" "$2"
}

# ------------------------------------------------------------------ staging safety
# stage_path ROOT REL: print the absolute path of REL inside ROOT after
# resolving every existing link relative to ROOT; die if it would leave ROOT.
stage_path() {
  local root rel resolved
  root=$(realpath -e "$1") || die "stage_path: no such root $1"
  rel=${2#/}
  resolved=$(realpath -m --relative-base="$root" "$root/$rel")
  case "$resolved" in
    /*) die "refusing to write $rel: it resolves outside the staging tree ($resolved)" ;;
    ..|../*) die "refusing to write $rel: it resolves outside the staging tree" ;;
  esac
  if [[ "$resolved" == "." ]]; then printf '%s\n' "$root"; else printf '%s/%s\n' "$root" "$resolved"; fi
}

# stage_mkdir ROOT REL...: create directories inside ROOT.
stage_mkdir() {
  local root=$1 d; shift
  for d in "$@"; do
    mkdir -p "$(stage_path "$root" "$d")"
  done
}

# stage_install ROOT SRC REL [MODE]: copy one regular file (SRC followed if a link) to ROOT/REL.
stage_install() {
  local root=$1 src=$2 rel=$3 mode=${4:-}
  local dst; dst=$(stage_path "$root" "$rel")
  mkdir -p "$(stage_path "$root" "$(dirname "$rel")")"
  if [[ -n "$mode" ]]; then install -m "$mode" "$src" "$dst"; else cp -L --preserve=mode "$src" "$dst"; fi
}

# stage_link ROOT TARGET REL: symlink ROOT/REL -> TARGET, made relative if TARGET is absolute
# (absolute targets are interpreted inside ROOT, as on the booted system).
stage_link() {
  local root=$1 target=$2 rel=${3#/}
  if [[ "$target" == /* ]]; then
    target=$(realpath -m --relative-to="/$(dirname "$rel")" "$target")
  fi
  local dir; dir=$(stage_path "$root" "$(dirname "$rel")")
  mkdir -p "$dir"
  # The link itself must not replace something that resolves elsewhere: check the
  # parent (resolved above) and remove only a link or file we own.
  local dst="$dir/$(basename "$rel")"
  if [[ -L "$dst" || -f "$dst" ]]; then rm -f "$dst"; fi
  ln -s "$target" "$dst"
}

# check_no_absolute_links ROOT: fail if a staging tree contains a link to an
# absolute path (after the build they would resolve on the build machine).
check_no_absolute_links() {
  local bad
  bad=$(find "$1" -type l -lname '/*' -printf '%P -> %l\n' | head -n 5)
  [[ -z "$bad" ]] || die "absolute symlinks in $1: $bad"
}

# safe_rm_tree DIR: delete a build tree only if nothing is mounted below it.
safe_rm_tree() {
  local d=$1
  [[ -e "$d" ]] || return 0
  local real; real=$(realpath -e "$d")
  [[ "$real" != "/" && "$real" == */* ]] || die "safe_rm_tree: refusing $d"
  if findmnt -rn -o TARGET | awk -v p="$real" 'index($0, p "/") == 1 || $0 == p' | grep -q .; then
    die "safe_rm_tree: something is mounted under $real"
  fi
  rm -rf --one-file-system "$real"
}

# sha256 FILE
sha256() { sha256sum "$1" | cut -d' ' -f1; }
