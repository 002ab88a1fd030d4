#!/usr/bin/env bash
# save and load of library/big (9 layers, ≈512 MB unpacked) with berth vs podman.
#
#   save-big   `save -o FILE IMAGE` from a store that holds the image. berth writes the
#              compressed layers it stores (≈375 MB); podman writes uncompressed layers
#              (≈512 MB), as docker does. Baseline podman.
#   load-big   `load -i FILE` into a fresh store: both tools load the same archive (the one
#              podman saved, uncompressed layers); berth-own loads berth's own archive
#              (compressed layers). Both tools unpack the layers (ready to run). Baseline podman.
#
# Usage: bench/saveload.sh [RUNS]    (default 5; env BERTH, BENCH_WORK)
#
# ext4 inode-reuse trap: each load goes to a fresh store never deleted during the benchmark
# (--finish removes them all); a save writes one file, removed after the run. Every run ends
# with an untimed sync. Tools alternate.
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
runs=${1:-5}
bench_need_fixtures basic
bench_need_podman
bench_need_berth

img=$BERTH_REGISTRY_PLAIN/library/big:latest
work=${BENCH_WORK:-/var/tmp/berth-bench-saveload}
mkdir -p "$work"
work=$(cd "$work" && pwd)
rm -rf "${work:?}"/*
podsrc="podman --root $work/podman-src/root --runroot $work/podman-src/run --tmpdir $work/podman-src/tmp"
podrun="podman --root $work/podman-\$BENCH_RUN/root --runroot $work/podman-\$BENCH_RUN/run --tmpdir $work/podman-\$BENCH_RUN/tmp"
rev=$(cd "$BENCH_ROOT" && git rev-parse --short HEAD)

printf '\n==> preparing: berth store and podman storage holding %s, one archive each\n' "$img" >&2
"$BERTH" --root "$work/berth-src" pull -q "$img" >/dev/null
$podsrc pull -q "$img" >/dev/null
"$BERTH" --root "$work/berth-src" save -o "$work/berth.tar" "$img"
$podsrc save -q -o "$work/podman.tar" "$img"
ls -l "$work/berth.tar" "$work/podman.tar" >&2

bench --name save-big --runs "$runs" --baseline podman \
	--tool berth="$BERTH --root $work/berth-src save -o $work/out-berth.tar $img" \
	--cleanup-for berth="rm -f $work/out-berth.tar" \
	--tool podman="$podsrc save -q -o $work/out-podman.tar $img" \
	--cleanup-for podman="rm -f $work/out-podman.tar" \
	--cleanup sync \
	--version-for berth="$BERTH --version" --version-for podman="podman --version" \
	--note "alternated; output file removed after each run; untimed sync; berth writes compressed layers, podman uncompressed; berth $rev"

bench --name load-big --runs "$runs" --baseline podman \
	--tool berth="$BERTH --root $work/berth-\$BENCH_RUN load -q -i $work/podman.tar" \
	--tool podman="$podrun load -q -i $work/podman.tar" \
	--tool berth-own="$BERTH --root $work/berth-own-\$BENCH_RUN load -q -i $work/berth.tar" \
	--cleanup sync \
	--finish "rm -rf $work" \
	--version-for berth="$BERTH --version" --version-for podman="podman --version" \
	--note "alternated; a fresh store per run, none deleted until the end (ext4 inode-reuse trap); untimed sync; berth and podman load podman's archive (uncompressed layers), berth-own loads berth's (compressed); berth $rev"
