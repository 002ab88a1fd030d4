#!/usr/bin/env bash
# Stop everything the CI scripts started (registries, token server, dockerd), unmount
# what is left under the state dir and delete it.
#
# Usage: scripts/ci/clean.sh [--keep-cache]
#   --keep-cache   keep $BERTH_CI_CACHE (the debootstrap rootfs and apt layers, minutes
#                  to rebuild) when it lies inside the state dir.
set -euo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep_cache=
[[ ${1:-} == --keep-cache ]] && keep_cache=1

"$BERTH_CI_SCRIPTS/registry.sh" stop all
"$BERTH_CI_SCRIPTS/dockerd.sh" stop
ci_umount_under "$BERTH_CI_STATE"
[[ -d $BERTH_CI_STATE ]] || exit 0
if [[ -n $keep_cache && $BERTH_CI_CACHE == "$BERTH_CI_STATE"/* && -d $BERTH_CI_CACHE ]]; then
	find "$BERTH_CI_STATE" -mindepth 1 -maxdepth 1 ! -path "$BERTH_CI_CACHE" -exec rm -rf {} +
	ci_log "removed $BERTH_CI_STATE (kept $BERTH_CI_CACHE)"
else
	rm -rf "$BERTH_CI_STATE"
	ci_log "removed $BERTH_CI_STATE"
fi
