# Node.js and the pqgate application in the image:
#  - the official binary from the npm package node-linux-<arch> (Debian
#    bookworm's nodejs is 18: too old), with its include/node headers;
#  - native addons built for the target with node-gyp against those headers
#    (cross compiler for arm64), out of tree under the cache;
#  - pqgate's programs bundled into one file each (image/lib/esbuild.mjs) with
#    a V8 code cache made by the board's node (app_code_cache), plus the
#    node_modules the bundles leave external (better-sqlite3).

node_pkg_dir() {
  local p v d
  p=$(json "$BOARD_JSON" j.node.package); v=$(json "$BOARD_JSON" j.node.version)
  d="$CACHE/unpacked/npm/$p-$v"
  if [[ ! -f "$d/.done" ]]; then
    safe_rm_tree "$d"
    mkdir -p "$d"
    tar -xzf "$(npm_path "$p" "$v")" -C "$d" --strip-components=1 --no-same-owner || die "cannot unpack $p-$v"
    touch "$d/.done"
  fi
  echo "$d"
}

node_gyp_js() {
  local c
  for c in "${npm_config_node_gyp:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js" \
           /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js; do
    [[ -n "$c" && -f "$c" ]] && { echo "$c"; return 0; }
  done
  die "node-gyp not found (it ships with npm)"
}

# build_addon NAME SRC_DIR TARGET OUT_FILE: node-gyp rebuild of a copy of SRC_DIR
# for the board (TARGET.node is the product to ship); cached by content.
build_addon() {
  local name=$1 src=$2 target=$3 out=$4 nd key bdir
  nd=$(node_pkg_dir)
  key=$( (cd "$src" && find . -path ./build -prune -o -type f \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.gyp' -o -name '*.gypi' -o -name package.json \) -print0 | sort -z | xargs -0 sha256sum; echo "$nd $GYP_ARCH $CC_T $CXX_T") | sha256sum | cut -c1-16)
  bdir="$CACHE/addons/$BOARD/$name-$key"
  if [[ ! -f "$bdir/.done" ]]; then
    info "building $name for $BOARD (node-gyp, $CXX_T)"
    safe_rm_tree "$bdir"
    mkdir -p "$bdir"
    (cd "$src" && tar --exclude=./build -cf - .) | tar -xf - -C "$bdir"
    local t0=$SECONDS
    # `npm run image` exports the npm configuration as npm_config_* (a user's
    # nodedir=/usr in ~/.npmrc would make node-gyp build against the build
    # machine's node instead of --nodedir): only the flags below count.
    (cd "$bdir" && env -u npm_config_nodedir -u npm_config_target -u npm_config_arch -u npm_config_target_arch \
       CC="$CC_T" CXX="$CXX_T" LINK="$CXX_T" AR="${CROSS_PREFIX}ar" \
       node "$(node_gyp_js)" rebuild --nodedir="$nd" --arch="$GYP_ARCH" --silent -j 2 > "$bdir/build.log" 2>&1) \
      || { tail -n 30 "$bdir/build.log" >&2; die "node-gyp build of $name failed (log: $bdir/build.log)"; }
    info "built $name in $((SECONDS - t0))s"
    touch "$bdir/.done"
  fi
  local built="$bdir/build/Release/$target.node"
  [[ -f "$built" ]] || die "node-gyp produced no $target.node for $name"
  "$STRIP" --strip-unneeded -o "$out" "$built"
}

# app_runtime_deps [PKG...]: package directories under node_modules needed at
# run time by PKG (default: every production dependency) and their
# dependencies. better-sqlite3's prebuild-install is an install-time helper:
# not shipped.
app_runtime_deps() {
  node -e '
    const fs = require("fs"), path = require("path");
    const root = process.argv[1];
    const skip = new Set(["prebuild-install"]);
    const seen = new Set();
    const visit = (name) => {
      if (seen.has(name) || skip.has(name)) return;
      const pj = path.join(root, "node_modules", name, "package.json");
      if (!fs.existsSync(pj)) { console.error("missing dependency " + name); process.exit(1); }
      seen.add(name);
      const p = JSON.parse(fs.readFileSync(pj, "utf8"));
      for (const d of Object.keys(p.dependencies || {})) visit(d);
    };
    const roots = process.argv.slice(2);
    for (const d of roots.length ? roots : Object.keys(JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).dependencies || {})) visit(d);
    for (const n of [...seen].sort()) console.log(n);
  ' "$REPO" "$@"
}

# rootfs_app ROOT: /usr/lib/pqgate with the bundled programs (lib/*.cjs; the
# runner lib/run.cjs comes from the overlay), the web admin's static files,
# the external node_modules and the addons.
rootfs_app() {
  local r=$1 app=usr/lib/pqgate f dep
  [[ -f "$REPO/dist/firmware/cli.js" ]] || die "dist/firmware/cli.js missing (the TypeScript build failed?)"
  stage_mkdir "$r" "$app"
  stage_install "$r" "$REPO/package.json" "$app/package.json" 0644
  # One CommonJS file per program (daemon, web, upgrade-boot, cli) instead of
  # dist/'s ~420 ES modules; no tests, benchmarks or source maps.
  local bdir="$BUILD/bundles"
  safe_rm_tree "$bdir"
  mkdir -p "$bdir"
  local t0=$SECONDS
  # Minified (identifiers too, function and class names kept): ~25 % less
  # load time than unminified on the build machine; PQGATE_BUNDLE_MINIFY=0 for
  # readable bundles when debugging on a device.
  local minify=--minify
  [[ "${PQGATE_BUNDLE_MINIFY:-1}" == 0 ]] && minify=
  (cd "$REPO" && node image/lib/esbuild.mjs --dist "$REPO/dist" --out "$bdir" $minify) > "$BUILD/esbuild.log" 2>&1 \
    || { tail -n 30 "$BUILD/esbuild.log" >&2; die "bundling failed (log: $BUILD/esbuild.log)"; }
  info "bundled in $((SECONDS - t0))s: $(tail -n 1 "$BUILD/esbuild.log")"
  stage_mkdir "$r" "$app/lib"
  for f in "$bdir"/*.cjs; do stage_install "$r" "$f" "$app/lib/$(basename "$f")" 0644; done
  # The web admin's static files, where webui/app.ts looks for them from lib/web.cjs (../webui/static).
  if [[ -d "$REPO/webui/static" ]]; then
    while IFS= read -r -d '' f; do
      stage_install "$r" "$REPO/webui/static/$f" "$app/webui/static/$f" 0644
    done < <(cd "$REPO/webui/static" && find . -type f -printf '%P\0')
  fi
  # better-sqlite3's package: the bundles carry its JavaScript and require its
  # addon by the fixed path node_modules/better-sqlite3/build/Release/better_sqlite3.node
  # (image/lib/esbuild.mjs); the build's smoke test loads the package itself.
  # JavaScript as published; native parts rebuilt below
  # (for a native package, its build/, deps/ and src/ are build inputs, not run-time files).
  while read -r dep; do
    local prune=(-path ./test -o -path ./docs)
    [[ -f "$REPO/node_modules/$dep/binding.gyp" ]] && prune+=(-o -path ./build -o -path ./deps -o -path ./src)
    while IFS= read -r -d '' f; do
      stage_install "$r" "$REPO/node_modules/$dep/$f" "$app/node_modules/$dep/$f" 0644
    done < <(cd "$REPO/node_modules/$dep" && find . \( "${prune[@]}" \) -prune -o -type f \
               ! -name '*.md' ! -name '*.map' ! -name '*.ts' ! -name '*.c' ! -name '*.cc' ! -name '*.h' ! -name '*.gyp' ! -name '*.gypi' -printf '%P\0')
  done < <(app_runtime_deps better-sqlite3)
  if [[ -d "$REPO/node_modules/better-sqlite3" ]]; then
    stage_mkdir "$r" "$app/node_modules/better-sqlite3/build/Release"
    build_addon better-sqlite3 "$REPO/node_modules/better-sqlite3" better_sqlite3 "$(stage_path "$r" "$app/node_modules/better-sqlite3/build/Release/better_sqlite3.node")"
  fi
  stage_mkdir "$r" "$app/native/build/Release"
  build_addon pqtun "$REPO/native" pqtun "$(stage_path "$r" "$app/native/build/Release/pqtun.node")"
}

# smoke_test ROOT: run the staged node on the build machine (directly or through
# qemu-user, with the staged loader and libraries): load both addons, open an
# in-memory SQLite database, and run the CLI.
smoke_test() {
  local r; r=$(realpath "$1")
  local ld; ld="$r/usr/lib/$TRIPLET/$(basename "$INTERP")"
  local -a run
  if [[ -n "$QEMU_USER" ]]; then run=("$QEMU_USER" -L "$r" "$r/usr/bin/node")
  else run=("$ld" --library-path "$r/usr/lib/$TRIPLET" "$r/usr/bin/node"); fi
  local out
  out=$("${run[@]}" -e '
    const app = process.argv[1];
    const { createRequire } = require("module");
    const req = createRequire(app + "/package.json");
    const tun = req(app + "/native/build/Release/pqtun.node");
    if (typeof tun.setUdpEncap !== "function") throw new Error("pqtun addon incomplete");
    // The IKE crypto fast path (firmware/crypto/native.ts) and which X25519 this board node gives it.
    for (const f of ["hmac", "prfPlus", "skAeadNew", "x25519Derive"]) if (typeof tun[f] !== "function") throw new Error("pqtun addon: no " + f);
    const Database = req("better-sqlite3");
    const db = new Database(":memory:");
    const v = db.prepare("select sqlite_version() as v").get().v;
    console.log(`node ${process.version} ${process.arch} sqlite ${v} x25519 ${tun.x25519Impl}`);
  ' "$r/usr/lib/pqgate" 2>&1) || die "smoke test failed: $out"
  info "smoke test: $out"
  out=$("${run[@]}" "$r/usr/lib/pqgate/lib/run.cjs" cli check-config "$r/etc/pqgate/default.json" 2>&1) || die "smoke test (pqgate check-config) failed: $out"
  info "smoke test: $out"
}

# prefetch_list ROOT: ROOT/usr/lib/pqgate/prefetch.list, the parts of the
# files that the daemon and the web admin start from, which rcS reads in the
# background while it mounts, loads modules and brings up the network
# (image/lib/prefetch.mjs, docs/image.md "Prefetch"): the shared libraries,
# node (without its ICU data), the two bundles with their code caches and the
# native addons, in the order the services need them.
prefetch_list() {
  local r; r=$(realpath "$1")
  local -a files=()
  mapfile -t files < <(cd "$r" && find "usr/lib/$TRIPLET" -maxdepth 1 -type f -name '*.so*' | sort)
  [[ -f "$r/usr/bin/node" && ! -L "$r/usr/bin/node" ]] || die "prefetch list: usr/bin/node is not a regular file"
  files+=(usr/bin/node)
  local f
  for f in run.cjs daemon.cjs daemon.cjs.cache web.cjs web.cjs.cache; do
    if [[ -f "$r/usr/lib/pqgate/lib/$f" && ! -L "$r/usr/lib/pqgate/lib/$f" ]]; then files+=("usr/lib/pqgate/lib/$f"); fi
  done
  mapfile -t -O "${#files[@]}" files < <(cd "$r" && find usr/lib/pqgate -type f -name '*.node' | sort)
  local out; out=$(stage_path "$r" usr/lib/pqgate/prefetch.list)
  node "$IMAGE_DIR/lib/prefetch.mjs" "$r" "$SQUASHFS_BLOCK" "${files[@]}" > "$out" 2> "$BUILD/prefetch.log" \
    || { cat "$BUILD/prefetch.log" >&2; die "prefetch list failed"; }
  chmod 0644 "$out"
  info "$(cat "$BUILD/prefetch.log")"
}

# app_code_cache ROOT: V8 code cache of every bundle, made by the staged node
# itself (through qemu-user for arm64) so the board's node accepts it
# (lib/run.cjs --write-cache loads each bundle, which also proves that the
# bundle's module graph is complete: a missing external fails here, not at boot).
app_code_cache() {
  local r; r=$(realpath "$1")
  local ld; ld="$r/usr/lib/$TRIPLET/$(basename "$INTERP")"
  local -a run names=()
  if [[ -n "$QEMU_USER" ]]; then run=("$QEMU_USER" -L "$r" "$r/usr/bin/node")
  else run=("$ld" --library-path "$r/usr/lib/$TRIPLET" "$r/usr/bin/node"); fi
  local f out lib
  # node writes lib/NAME.cjs.cache itself: the directory must resolve inside
  # the staging tree and hold no links (no write through a link out of it).
  lib=$(stage_path "$r" usr/lib/pqgate/lib)
  [[ "$lib" == "$r/usr/lib/pqgate/lib" && -d "$lib" && ! -L "$lib" ]] || die "code cache: $r/usr/lib/pqgate/lib is not a plain directory"
  for f in "$lib"/*.cjs; do
    [[ -L "$f" || -L "$f.cache" ]] && die "code cache: $f or its cache is a symbolic link"
    [[ $(basename "$f") == run.cjs ]] || names+=("$(basename "$f" .cjs)")
  done
  out=$("${run[@]}" "$lib/run.cjs" --write-cache "${names[@]}" 2>&1) || die "code cache (loading the bundles) failed: $out"
  info "code cache: $(echo "$out" | tr '\n' ' ')"
}
