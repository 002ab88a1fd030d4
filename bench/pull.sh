#!/usr/bin/env bash
# Pull of library/big (busybox + 8 × 64 MiB layers: ≈512 MB unpacked, 375 MB compressed, 9
# layers) from the local plain registry: berth (release) vs `podman pull` vs
# `skopeo copy docker://… oci:…` (download only, no unpack), alternated, medians, ratios to
# podman, peak RSS. berth and podman end "ready to use" (layers unpacked).
#
# Usage: bench/pull.sh [RUNS]        (default 5; env BERTH=path/to/berth, BENCH_WORK=dir)
#
# The ext4 inode-reuse trap (bench/README.md): every run pulls into a fresh store/storage
# directory that is never reused and never deleted during the benchmark (they are all removed
# by --finish), so no timed run follows a mass deletion; and every run ends with an untimed
# `sync`, so no run pays for the previous run's writeback. The tools are alternated.
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
runs=${1:-5}
bench_need_fixtures basic
bench_need_podman
bench_need_berth

img=$BERTH_REGISTRY_PLAIN/library/big:latest
work=${BENCH_WORK:-/var/tmp/berth-bench-pull}
mkdir -p "$work"
work=$(cd "$work" && pwd)
rm -rf "${work:?}"/*
# podman with its own storage per run, never the machine's.
pod="podman --root $work/podman-\$BENCH_RUN/root --runroot $work/podman-\$BENCH_RUN/run --tmpdir $work/podman-\$BENCH_RUN/tmp"

bench --name pull-big --runs "$runs" --baseline podman \
	--tool berth="$BERTH --root $work/berth-\$BENCH_RUN pull -q $img" \
	--tool podman="$pod pull -q $img" \
	--tool skopeo="skopeo copy -q --src-tls-verify=false docker://$img oci:$work/skopeo-\$BENCH_RUN:big" \
	--cleanup sync \
	--finish "rm -rf $work" \
	--version-for berth="$BERTH --version" \
	--version-for podman="podman --version" \
	--version-for skopeo="skopeo --version" \
	--note "alternated; a fresh store per run, none deleted until the end (ext4 inode-reuse trap); untimed sync after every run; registry blobs in page cache; berth and podman unpack (ready to use), skopeo only downloads; berth $(cd "$BENCH_ROOT" && git rev-parse --short HEAD)"
