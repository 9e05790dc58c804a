# Staging the root filesystem from the unpacked packages (Buildroot's
# TARGET_DIR). Every write goes through stage_* (lib/common.sh).
#
# Layout: merged /usr (bin, sbin, lib and lib64 are relative links into usr/),
# read-only squashfs at run time; /run, /tmp are tmpfs and /data is the ext4
# data partition (configuration database), mounted by /etc/init.d/rcS.

# pkg_dir PKG: the unpacked directory of a locked package of this board.
pkg_dir() {
  local v; v=$(lock_version "$BOARD_DIR" "$1")
  [[ -n "$v" ]] || die "package $1 is not in $BOARD_DIR/packages.lock"
  unpack_deb "$ARCH" "$1" "$v"
}

rootfs_skeleton() {
  local r=$1
  stage_mkdir "$r" usr/bin usr/sbin usr/lib usr/lib/"$TRIPLET" usr/share etc proc sys dev run tmp data root var
  stage_link "$r" usr/bin bin
  stage_link "$r" usr/sbin sbin
  stage_link "$r" usr/lib lib
  if [[ "$ARCH" == amd64 ]]; then stage_mkdir "$r" usr/lib64; stage_link "$r" usr/lib64 lib64; fi
  stage_link "$r" ../run var/run
  stage_link "$r" ../run/log var/log
  stage_link "$r" ../tmp var/tmp
  stage_link "$r" ../run/lib var/lib
  stage_link "$r" ../run/resolv.conf etc/resolv.conf
  stage_link "$r" ../proc/self/mounts etc/mtab
}

# busybox_applets BUSYBOX: list "dir/applet" for every applet (runs the target binary, through qemu-user if needed).
busybox_applets() {
  local bb=$1
  if [[ -n "$QEMU_USER" ]]; then "$QEMU_USER" "$bb" --list-full; else "$bb" --list-full; fi
}

rootfs_busybox() {
  local r=$1 src a name dir
  src="$(pkg_dir busybox-static)/bin/busybox"
  stage_install "$r" "$src" usr/bin/busybox 0755
  while read -r a; do
    [[ -n "$a" ]] || continue
    name=${a##*/}
    dir=${a%/*}
    case "$dir" in bin|usr/bin) dir=usr/bin ;; sbin|usr/sbin) dir=usr/sbin ;; *) dir=usr/bin ;; esac
    # iproute2's ip replaces busybox's (which has no `ip xfrm`).
    [[ "$name" == ip ]] && continue
    [[ "$name" == busybox ]] && continue
    stage_link "$r" "/usr/bin/busybox" "$dir/$name"
  done < <(busybox_applets "$src")
}

# The library pool: every unpacked package's lib dirs for this triplet.
lib_pool_dirs() {
  local p d
  while read -r p; do
    d=$(pkg_dir "$p")
    for sub in "lib/$TRIPLET" "usr/lib/$TRIPLET"; do [[ -d "$d/$sub" ]] && echo "$d/$sub"; done
  done < <(json "$BOARD_JSON" j.packages)
}

# find_lib SONAME: the file in the pool providing SONAME (links followed inside its package).
find_lib() {
  local so=$1 d
  for d in "${POOL[@]}"; do
    if [[ -e "$d/$so" || -L "$d/$so" ]]; then
      # Package links are relative within the lib dir (libfoo.so.1 -> libfoo.so.1.2.3).
      local t="$d/$so"
      while [[ -L "$t" ]]; do
        local l; l=$(readlink "$t")
        case "$l" in /*) t="$(dirname "$d")/${l#/}" ;; *) t="$(dirname "$t")/$l" ;; esac
      done
      [[ -f "$t" ]] && { echo "$t"; return 0; }
    fi
  done
  return 1
}

# rootfs_libs ROOT ELF...: copy the NEEDED closure of the given staged ELF files into usr/lib/<triplet>.
rootfs_libs() {
  local r=$1; shift
  mapfile -t POOL < <(lib_pool_dirs)
  local -a queue=("$@")
  local -A done=()
  while ((${#queue[@]})); do
    local f=${queue[0]}; queue=("${queue[@]:1}")
    local so
    while read -r so; do
      [[ -n "$so" && -z "${done[$so]:-}" ]] || continue
      done[$so]=1
      # The dynamic loader is installed separately at its interpreter path.
      [[ "$so" == ld-linux* ]] && continue
      local src; src=$(find_lib "$so") || die "no package provides $so (needed by ${f#"$r"/})"
      stage_install "$r" "$src" "usr/lib/$TRIPLET/$so" 0644
      queue+=("$(stage_path "$r" "usr/lib/$TRIPLET/$so")")
    done < <(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  done
  # The loader, at the path the binaries name (/lib64/... or /lib/...).
  local ld; ld=$(basename "$INTERP")
  local ldsrc; ldsrc=$(find_lib "$ld") || die "no dynamic loader $ld in the package set"
  stage_install "$r" "$ldsrc" "usr/lib/$TRIPLET/$ld" 0755
  local interp_rel=${INTERP#/}
  stage_link "$r" "/usr/lib/$TRIPLET/$ld" "usr/${interp_rel}"
}

rootfs_iproute2() {
  local r=$1
  stage_install "$r" "$(pkg_dir iproute2)/bin/ip" usr/sbin/ip 0755
}

# rootfs_node ROOT: the Node.js binary from the npm package, stripped.
rootfs_node() {
  local r=$1 d
  d=$(node_pkg_dir)
  local dst; dst=$(stage_path "$r" usr/bin/node)
  "$STRIP" -o "$dst" "$d/bin/node" || die "strip node failed"
  chmod 0755 "$dst"
}

# rootfs_modules ROOT: the board's modules and hardware drivers plus the crypto
# directories (with dependencies), then depmod (modules.dep, modules.alias).
rootfs_modules() {
  local r=$1 kd rel m
  kd=$(kernel_dir)
  local mdir="lib/modules/$KREL"
  local -a args=()
  while read -r m; do args+=("$m"); done < <(json "$BOARD_JSON" 'j.modules.rootfs.concat(j.modules.drivers ?? [])')
  while read -r m; do args+=(--dir "$m"); done < <(json "$BOARD_JSON" j.modules.rootfsDirs)
  local list; list=$(node "$IMAGE_DIR/lib/modules.mjs" "$kd/$mdir/modules.dep" "${args[@]}") || die "module selection failed"
  while read -r rel; do
    [[ -n "$rel" ]] || continue
    stage_install "$r" "$kd/$mdir/$rel" "usr/$mdir/$rel" 0644
  done <<< "$list"
  for m in modules.order modules.builtin modules.builtin.modinfo; do
    [[ -f "$kd/$mdir/$m" ]] && stage_install "$r" "$kd/$mdir/$m" "usr/$mdir/$m" 0644
  done
  depmod -b "$r" "$KREL" || die "depmod failed"
  # Loaded by rcS in this order (dependencies first); `drivers` are loaded only
  # for hardware that is present (coldplug from the devices' modaliases).
  node "$IMAGE_DIR/lib/modules.mjs" "$kd/$mdir/modules.dep" $(json "$BOARD_JSON" j.modules.rootfs) \
    | sed 's#.*/##; s#\.ko$##' > "$(stage_path "$r" etc/modules-load)"
}

# rootfs_overlay ROOT DIR: copy an overlay tree (files, links, modes) into ROOT.
rootfs_overlay() {
  local r=$1 src=$2 p
  [[ -d "$src" ]] || return 0
  while IFS= read -r -d '' p; do
    if [[ -L "$src/$p" ]]; then stage_link "$r" "$(readlink "$src/$p")" "$p"
    elif [[ -d "$src/$p" ]]; then stage_mkdir "$r" "$p"
    else stage_install "$r" "$src/$p" "$p"
    fi
  done < <(cd "$src" && find . -mindepth 1 -printf '%P\0' | sort -z)
}
