#!/usr/bin/env bash
# `run --rm busybox true`: berth (embedded libcontainer, no daemon) vs podman vs docker, plus a
# no-op row for the harness's own cost. Issue 6's target: berth ≤ 30 ms.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_need_fixtures basic && bench_need_podman && bench_need_dockerd && bench_need_berth
img=$BERTH_REGISTRY_PLAIN/library/busybox:latest
root=$(mktemp -d /tmp/berth-bench-run.XXXXXX)
trap 'rm -rf "$root"' EXIT
"$BERTH" --root "$root" pull -q "$img" >/dev/null
podman pull -q "$img" >/dev/null
"$BERTH_DOCKER" pull -q "$img" >/dev/null
bench --name run-true --runs "${RUNS:-20}" --warmup 2 --baseline podman \
	--tool noop="true" \
	--tool berth="$BERTH --root $root run --rm $img true" \
	--tool podman="podman run --rm $img true" \
	--tool docker="$BERTH_DOCKER run --rm --network none $img true" \
	--version-for berth="$BERTH --version" --version-for podman='podman --version' \
	--version-for docker="$BERTH_DOCKER --version" \
	--note "alternated; the image is local for every tool; docker with --network none (no bridge here)"
