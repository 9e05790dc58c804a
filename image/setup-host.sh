#!/usr/bin/env bash
# Install the build machine's tools for image/build.sh and qemu/ (Debian 12, root):
# image assembly (genimage, squashfs-tools, dosfstools, mtools, e2fsprogs,
# cpio, kmod), cross-building native addons for arm64 (g++-aarch64-linux-gnu,
# qemu-user-static for the smoke test), and booting the images (QEMU with
# OVMF / AAVMF UEFI firmware). Idempotent; installs only what is missing.
set -euo pipefail
want=(zstd xz-utils genimage squashfs-tools dosfstools mtools e2fsprogs cpio kmod file binutils
      g++ g++-aarch64-linux-gnu qemu-user-static qemu-system-x86 qemu-system-arm qemu-utils
      ovmf qemu-efi-aarch64 debian-archive-keyring iproute2)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup-host] installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "[setup-host] ok" >&2
