#!/usr/bin/env bash
# Build the pqgate firmware image for one board (`npm run image -- --board B`).
#
# Organised like Buildroot, but from binary packages (Buildroot itself
# downloads and compiles sources, which this environment cannot):
#   image/boards/<board>/board.json     kernel flavour, modules, command line, QEMU command line
#   image/boards/<board>/packages.lock  pinned Debian packages + Node.js package, with SHA256
#   image/overlay/ (+ boards/<board>/overlay/)  rootfs overlay: init scripts, services
#   image/boards/<board>/post-build.sh  hook on the staged rootfs
#   image/boards/<board>/post-image.sh  hook on the output directory (genimage)
#   image/boards/<board>/genimage.cfg   GPT layout
#
# Steps: fetch + verify → TypeScript build → stage rootfs (busybox, glibc,
# iproute2, node, pqgate, kernel modules, overlay) → post-build → smoke test
# (the staged node runs the addons, through qemu-user for arm64) → squashfs →
# initramfs → ESP → data → post-image (GPT disk). Output: image/out/<board>/.
#
# usage: image/build.sh --board x86_64|arm64 [--update-lock] [--skip-tsc]
set -euo pipefail
T_START=$SECONDS
IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$IMAGE_DIR")
export IMAGE_DIR REPO
source "$IMAGE_DIR/lib/common.sh"
source "$IMAGE_DIR/lib/fetch.sh"
source "$IMAGE_DIR/lib/rootfs.sh"
source "$IMAGE_DIR/lib/node.sh"
source "$IMAGE_DIR/lib/image.sh"
source "$IMAGE_DIR/lib/bundle.sh"

BOARD='' UPDATE_LOCK='' SKIP_TSC=''
while [[ $# -gt 0 ]]; do
  case "$1" in
    --board) BOARD=${2:-}; shift 2 ;;
    --board=*) BOARD=${1#--board=}; shift ;;
    --update-lock) UPDATE_LOCK=1; shift ;;
    --skip-tsc) SKIP_TSC=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (usage: --board x86_64|arm64 [--update-lock] [--skip-tsc])" ;;
  esac
done
[[ -n "$BOARD" ]] || die "--board is required ($(ls "$IMAGE_DIR/boards" | tr '\n' ' '))"
BOARD_DIR="$IMAGE_DIR/boards/$BOARD"
BOARD_JSON="$BOARD_DIR/board.json"
[[ -f "$BOARD_JSON" ]] || die "unknown board $BOARD ($(ls "$IMAGE_DIR/boards" | tr '\n' ' '))"
[[ $(id -u) -eq 0 ]] || die "run as root (files in the image must be owned by root)"

for t in node npm dpkg-deb apt-get readelf depmod mksquashfs genimage mkfs.vfat mmd mcopy mke2fs cpio zstd xz; do
  command -v "$t" >/dev/null || die "$t not found: run bash image/setup-host.sh"
done

ARCH=$(json "$BOARD_JSON" j.debianArch)
TRIPLET=$(json "$BOARD_JSON" j.triplet)
INTERP=$(json "$BOARD_JSON" j.interpreter)
KPKG=$(json "$BOARD_JSON" j.kernel.package)
KREL=$(json "$BOARD_JSON" j.kernel.release)
STRIP=$(json "$BOARD_JSON" j.cross.strip)
CC_T=$(json "$BOARD_JSON" j.cross.cc)
CXX_T=$(json "$BOARD_JSON" j.cross.cxx)
CROSS_PREFIX=${STRIP%strip}
GYP_ARCH=$(json "$BOARD_JSON" j.node.gypArch)
QEMU_USER=$(json "$BOARD_JSON" 'j.cross.qemuUser ?? ""' || true)
for t in "$STRIP" "$CC_T" "$CXX_T" ${QEMU_USER:+"$QEMU_USER"}; do
  command -v "$t" >/dev/null || die "$t not found: run bash image/setup-host.sh"
done
OUT="$IMAGE_DIR/out/$BOARD"
BUILD="$OUT/build"
# squashfs block size (docs/image.md "Prefetch"): a page fault decompresses
# its whole block, and node's start-up touches ~57 MB spread over its 105 MB.
# 128 KiB instead of 1 MiB: 11 MB less decompressed on the services' start and
# 0.8 s earlier to the admin page under QEMU TCG (x86_64), for 4 MB more
# rootfs (zstd -19: 39.9 → 43.9 MB). 64 KiB was slower again (46 MB).
SQUASHFS_BLOCK=131072
BUILD_ID=$(date -u +%Y%m%dT%H%M%SZ)-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo nogit)
# `npm run image` exports the npm configuration as npm_config_*; a `nodedir`
# there (e.g. /usr for the host's node headers) would make node-gyp build the
# addons against the build machine's Node instead of the board's (the smoke
# test then fails with a NODE_MODULE_VERSION mismatch).
unset npm_config_nodedir
export BOARD BOARD_DIR BOARD_JSON ARCH TRIPLET INTERP KPKG KREL OUT BUILD BUILD_ID
mkdir -p "$OUT" "$BUILD" "$CACHE"

step "board $BOARD ($ARCH), kernel $KREL, cache $CACHE"
if [[ -n "$UPDATE_LOCK" || ! -f "$BOARD_DIR/packages.lock" ]]; then
  step "resolving the package set (writing packages.lock)"
  update_lock "$BOARD_DIR"
fi

step "fetching pinned packages ($(grep -c '^[dn]' "$BOARD_DIR/packages.lock") entries) and verifying SHA256"
fetch_all "$BOARD_DIR"
kernel_dir >/dev/null
install_board_firmware "$BOARD_JSON" "$OUT"

if [[ -z "$SKIP_TSC" ]]; then
  step "compiling pqgate (tsc)"
  (cd "$REPO" && npx tsc -p tsconfig.json) > "$BUILD/tsc.log" 2>&1 || { tail -n 20 "$BUILD/tsc.log" >&2; die "TypeScript build failed (log: $BUILD/tsc.log)"; }
fi

step "staging the root filesystem"
ROOTFS="$BUILD/rootfs"
safe_rm_tree "$ROOTFS"
mkdir -p "$ROOTFS"
rootfs_skeleton "$ROOTFS"
info "busybox"; rootfs_busybox "$ROOTFS"
info "iproute2"; rootfs_iproute2 "$ROOTFS"
info "node $(json "$BOARD_JSON" j.node.version) (stripped)"; rootfs_node "$ROOTFS"
info "pqgate application and native addons"; rootfs_app "$ROOTFS"
info "shared libraries (NEEDED closure)"
mapfile -t elfs < <(find "$ROOTFS/usr/bin" "$ROOTFS/usr/sbin" "$ROOTFS/usr/lib/pqgate" -type f \( -name '*.node' -o -perm -u+x \) -print0 \
  | xargs -0 file -N | awk -F: '/ELF/ && /dynamic/ {print $1}')
rootfs_libs "$ROOTFS" "${elfs[@]}"
info "kernel modules"; rootfs_modules "$ROOTFS"
info "overlay"; rootfs_overlay "$ROOTFS" "$IMAGE_DIR/overlay"; rootfs_overlay "$ROOTFS" "$BOARD_DIR/overlay"
info "update trust anchors"; bundle_install_trust "$ROOTFS"

step "post-build hook"
( source "$BOARD_DIR/post-build.sh" "$ROOTFS" )
check_no_absolute_links "$ROOTFS"

step "smoke test of the staged node and addons${QEMU_USER:+ (through $QEMU_USER)}"
smoke_test "$ROOTFS"
step "V8 code cache of the bundled programs (the staged node${QEMU_USER:+ through $QEMU_USER})"
app_code_cache "$ROOTFS"

step "prefetch list (the parts of files rcS reads ahead)"
prefetch_list "$ROOTFS"

step "packing rootfs.squashfs (zstd, $((SQUASHFS_BLOCK / 1024)) KiB blocks)"
rm -f "$OUT/rootfs.squashfs"
mksquashfs "$ROOTFS" "$OUT/rootfs.squashfs" -comp zstd -Xcompression-level "${PQGATE_SQUASHFS_LEVEL:-19}" -b "$((SQUASHFS_BLOCK / 1024))K" -all-root -no-xattrs -noappend -quiet -no-progress \
  > "$BUILD/mksquashfs.log" 2>&1 || { tail "$BUILD/mksquashfs.log" >&2; die "mksquashfs failed"; }
ROOTFS_BYTES=$(stat -c %s "$OUT/rootfs.squashfs")
info "rootfs.squashfs: $((ROOTFS_BYTES / 1024)) KiB ($(du -sk "$ROOTFS" | cut -f1) KiB unpacked)"
ROOTFS_LIMIT=$(( $(json "$BOARD_JSON" j.disk.rootfsMiB) * 1024 * 1024 ))
(( ROOTFS_BYTES <= ROOTFS_LIMIT )) || die "rootfs ($ROOTFS_BYTES bytes) does not fit the rootfs partitions ($ROOTFS_LIMIT bytes)"

step "kernel and initramfs"
cp "$(kernel_dir)/$(json "$BOARD_JSON" j.kernel.image)" "$OUT/vmlinuz"
build_initramfs "$OUT/initrd.img"
info "vmlinuz $(( $(stat -c %s "$OUT/vmlinuz") / 1024 )) KiB, initrd.img $(( $(stat -c %s "$OUT/initrd.img") / 1024 )) KiB"

step "EFI System Partition (systemd-boot, BLS entries for slots A and B)"
build_esp "$OUT/esp.vfat"
step "data partition (ext4)"
build_data "$OUT/data.ext4"

step "post-image hook (genimage: GPT disk)"
( source "$BOARD_DIR/post-image.sh" "$OUT" )
step "update bundle"; bundle_make

ELAPSED=$((SECONDS - T_START))
node -e '
  const [out, board, id, kernel, secs, rootfs] = process.argv.slice(1);
  const fs = require("fs");
  const size = (f) => fs.statSync(out + "/" + f).size;
  const info = { board, buildId: id, kernel, buildSeconds: Number(secs), rootfsBytes: Number(rootfs),
    files: Object.fromEntries(["disk.img", "rootfs.squashfs", "esp.vfat", "data.ext4", "vmlinuz", "initrd.img"].map((f) => [f, size(f)])) };
  fs.writeFileSync(out + "/build-info.json", JSON.stringify(info, null, 2) + "\n");
' "$OUT" "$BOARD" "$BUILD_ID" "$KREL" "$ELAPSED" "$ROOTFS_BYTES"
step "done in ${ELAPSED}s: $OUT/disk.img (rootfs $((ROOTFS_BYTES / 1024 / 1024)) MiB); boot it with: npm run qemu -- --board $BOARD"
