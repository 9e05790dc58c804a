#!/usr/bin/env bash
# Post-build hook (Buildroot's BR2_ROOTFS_POST_BUILD_SCRIPT): runs after the
# root filesystem is staged, before it is packed. $1 = the staging tree.
# Board-specific adjustments go here; writes only through stage_* helpers.
set -euo pipefail  # sourced by image/build.sh in a subshell: its helpers and variables are in scope
ROOT=$1
# The release file the web admin and `pqgate version` can show.
cat > "$(stage_path "$ROOT" etc/pqgate-release)" <<REL
BOARD=$BOARD
VERSION=$(json "$REPO/package.json" j.version)
BUILD_ID=${BUILD_ID:-unknown}
KERNEL=$KREL
REL
