# Boot artefacts: kernel, stage-1 initramfs, EFI System Partition, data
# partition, and the GPT disk (genimage, from the board's genimage.cfg).

# kernel_dir: the unpacked kernel package, with modules.dep made by depmod.
kernel_dir() {
  local v d
  v=$(lock_version "$BOARD_DIR" "$KPKG")
  [[ -n "$v" ]] || die "kernel package $KPKG is not in packages.lock"
  d=$(unpack_deb "$ARCH" "$KPKG" "$v")
  if [[ ! -f "$d/.depmod" ]]; then
    # Debian's 6.12 packages ship modules as .ko.xz. Busybox's insmod/modprobe
    # load plain .ko files, and decompressing XZ in the guest would cost boot
    # time under TCG for nothing: the squashfs and the zstd initramfs compress
    # them anyway. So they are decompressed once here, before depmod.
    local n
    n=$(find "$d/lib/modules/$KREL" -name '*.ko.xz' | wc -l)
    if (( n > 0 )); then
      info "decompressing $n kernel modules (.ko.xz)"
      find "$d/lib/modules/$KREL" -name '*.ko.xz' -print0 | xargs -0 -r -P "$(nproc)" -n 64 xz -d -q \
        || die "cannot decompress the kernel modules"
    fi
    [[ -z "$(find "$d/lib/modules/$KREL" -name '*.ko.*' -print -quit)" ]] \
      || die "kernel modules in a compression other than XZ: $(find "$d/lib/modules/$KREL" -name '*.ko.*' -print -quit)"
    depmod -b "$d" "$KREL" || die "depmod on the kernel package failed"
    touch "$d/.depmod"
  fi
  echo "$d"
}

# build_initramfs OUT_FILE: busybox + block drivers + init, zstd-compressed
# newc cpio. zstd rather than gzip (docs/image.md "Boot time"): the kernel
# unpacks it before it can run /init, and zstd decompresses about 3x faster
# than gzip (about 0.3 s less under TCG) from a 17 % smaller file (RD_ZSTD is
# built into Debian's kernels for both boards).
build_initramfs() {
  local out=$1 r="$BUILD/initramfs" kd m rel
  safe_rm_tree "$r"
  mkdir -p "$r"
  stage_mkdir "$r" bin dev proc sys newroot lib/modules
  stage_install "$r" "$(pkg_dir busybox-static)/bin/busybox" bin/busybox 0755
  for m in sh mount umount switch_root insmod sleep cat grep sed mkdir reboot echo; do
    stage_link "$r" busybox "bin/$m"
  done
  stage_install "$r" "$IMAGE_DIR/initramfs/init" init 0755
  kd=$(kernel_dir)
  local list; list=$(node "$IMAGE_DIR/lib/modules.mjs" "$kd/lib/modules/$KREL/modules.dep" $(json "$BOARD_JSON" j.modules.initramfs)) || die "initramfs module selection failed"
  : > "$r/lib/modules/load-order"
  while read -r rel; do
    [[ -n "$rel" ]] || continue
    m=$(basename "$rel" .ko)
    stage_install "$r" "$kd/lib/modules/$KREL/$rel" "lib/modules/$m.ko" 0644
    echo "$m" >> "$r/lib/modules/load-order"
  done <<< "$list"
  check_no_absolute_links "$r"
  (cd "$r" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet | zstd -q -19 -c) > "$out" \
    || die "cannot pack the initramfs"
}

# build_esp OUT_FILE: FAT ESP with systemd-boot at the removable-media path and
# one Boot Loader Specification entry per slot, each with its own kernel and
# initramfs. Built with mkfs.vfat -C and mtools: no loop mounts.
#
# A/B with boot counting (docs/upgrade.md "Device side"): entries are
# loader/entries/slot-a.conf and slot-b.conf with `sort-key pqgate` and
# `version <generation>`; systemd-boot sorts entries with a sort key by
# version descending, so the slot installed last is the default as long as it
# has tries left (a trial entry is slot-X+3-0.conf; +0 sorts last). loader.conf's
# default is a glob over both slots, never one slot. The factory image gives
# slot A generation 2 and slot B generation 1. Per-slot metadata (version,
# security version, board, generation) in /pqgate-X/slot.json.
build_esp() {
  local out=$1 mib version cmdline sdboot d slot gen secver
  mib=$(json "$BOARD_JSON" j.disk.espMiB)
  # Same version and security version as the bundle and release.json (lib/bundle.sh).
  version=$(bundle_version)
  secver=$(bundle_security_version)
  [[ "$secver" =~ ^[0-9]+$ ]] || die "PQGATE_SECURITY_VERSION must be a number"
  cmdline=$(json "$BOARD_JSON" j.cmdline)
  sdboot="$(pkg_dir systemd-boot-efi)/$(json "$BOARD_JSON" j.efi.bootloader)"
  [[ -f "$sdboot" ]] || die "systemd-boot binary not found: $sdboot"
  d="$BUILD/esp"
  safe_rm_tree "$d"
  mkdir -p "$d/loader/entries"
  cat > "$d/loader/loader.conf" <<EOF
default slot-*
timeout 0
editor no
console-mode keep
EOF
  for slot in a b; do
    if [[ $slot == a ]]; then gen=2; else gen=1; fi
    cat > "$d/loader/entries/slot-$slot.conf" <<EOF
title   pqgate $version (slot ${slot^^})
sort-key pqgate
version $gen
linux   /pqgate-$slot/vmlinuz
initrd  /pqgate-$slot/initrd.img
options fw.slot=$slot $cmdline
EOF
    printf '{"version":"%s","securityVersion":%d,"board":"%s","generation":%d}\n' "$version" "$secver" "$BOARD" "$gen" > "$d/slot-$slot.json"
  done
  rm -f "$out"
  mkfs.vfat -C -F 32 -n PQGATE-ESP -i "$(printf '%s' "$BOARD" | sha256sum | cut -c1-8)" "$out" $((mib * 1024)) >/dev/null || die "mkfs.vfat failed"
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$out" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/pqgate-a ::/pqgate-b ::/pqgate || die "mmd failed"
  mcopy -i "$out" "$sdboot" "::/$(json "$BOARD_JSON" j.efi.removablePath)" || die "mcopy systemd-boot failed"
  mcopy -i "$out" "$d/loader/loader.conf" ::/loader/loader.conf
  for slot in a b; do
    mcopy -i "$out" "$d/loader/entries/slot-$slot.conf" "::/loader/entries/slot-$slot.conf"
    mcopy -i "$out" "$d/slot-$slot.json" "::/pqgate-$slot/slot.json"
    mcopy -i "$out" "$OUT/vmlinuz" "::/pqgate-$slot/vmlinuz" || die "ESP too small for the kernel? (espMiB=$mib)"
    mcopy -i "$out" "$OUT/initrd.img" "::/pqgate-$slot/initrd.img" || die "ESP too small for the initramfs? (espMiB=$mib)"
  done
}

# build_data OUT_FILE: the empty ext4 data partition (label "data").
build_data() {
  local out=$1 mib d
  mib=$(json "$BOARD_JSON" j.disk.dataMiB)
  d="$BUILD/data-root"
  safe_rm_tree "$d"
  mkdir -p "$d/pqgate"
  rm -f "$out"
  mke2fs -q -t ext4 -L data -E root_owner=0:0 -d "$d" "$out" "${mib}M" >/dev/null || die "mke2fs failed"
}

# run_genimage: the GPT disk from the board's genimage.cfg (inputs in $OUT).
run_genimage() {
  local tmp="$BUILD/genimage-tmp" root="$BUILD/genimage-root"
  safe_rm_tree "$tmp"; safe_rm_tree "$root"
  mkdir -p "$root"
  rm -f "$OUT/disk.img"
  genimage --config "$BOARD_DIR/genimage.cfg" --rootpath "$root" --tmppath "$tmp" \
    --inputpath "$OUT" --outputpath "$OUT" > "$BUILD/genimage.log" 2>&1 \
    || { tail -n 20 "$BUILD/genimage.log" >&2; die "genimage failed"; }
  safe_rm_tree "$tmp"
}
