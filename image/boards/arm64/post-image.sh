#!/usr/bin/env bash
# Post-image hook (Buildroot's BR2_ROOTFS_POST_IMAGE_SCRIPT): $1 = the output
# directory holding rootfs.squashfs, esp.vfat and data.ext4; assembles the GPT
# disk with genimage from this board's genimage.cfg.
set -euo pipefail  # sourced by image/build.sh in a subshell: its helpers and variables are in scope
run_genimage
