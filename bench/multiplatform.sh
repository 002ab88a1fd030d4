#!/usr/bin/env bash
# Multi-platform builds for linux/amd64 + linux/arm64: berth (release) vs
# `buildah build --platform linux/amd64,linux/arm64 --manifest` vs podman (the same with
# `podman build`), alternated, medians, ratios to buildah. Base: library/busybox-qemu (the
# fixture with a real amd64 and a real arm64 busybox). Needs qemu-user-static registered with
# binfmt_misc (scripts/ci/install-deps.sh).
#
# Scenarios (each its own bench run):
#   cross      the cross-compile shape: a `FROM --platform=$BUILDPLATFORM` stage that does the
#              CPU work natively once per target ($TARGETARCH in its RUN), and a final stage
#              per target that only copies the result. --no-cache on every run.
#   emulated   a RUN with the same CPU work in each target's own image: the arm64 one runs
#              under QEMU. --no-cache on every run.
#   cached     berth's fully cached two-platform build of the cross Dockerfile vs BuildKit's
#              fully cached single-platform build of it (dockerd 20.10, host platform).
#
# Usage: bench/multiplatform.sh [RUNS] [SCENARIO...]  (default 5 runs; all scenarios)
#        env BERTH=path/to/berth, BENCH_WORK=dir (default /var/tmp/berth-bench-mp),
#        BENCH_LOOPS=N (CPU work: shell loop iterations, default 300000)
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
runs=${1:-5}
shift || true
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(cross emulated cached)
bench_need_fixtures basic
bench_need_podman
bench_need_berth
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || {
	echo "multiplatform.sh: no qemu-aarch64 in binfmt_misc; run scripts/ci/install-deps.sh" >&2
	exit 1
}

base=$BERTH_REGISTRY_PLAIN/library/busybox-qemu:latest
loops=${BENCH_LOOPS:-300000}
work=${BENCH_WORK:-/var/tmp/berth-bench-mp}
mkdir -p "$work"
work=$(cd "$work" && pwd)
rev=$(cd "$BENCH_ROOT" && git rev-parse --short HEAD)
platforms=linux/amd64,linux/arm64

# The CPU work: a busybox shell loop (the same instructions on both platforms).
work_cmd="i=0; while [ \$i -lt $loops ]; do i=\$((i+1)); done; echo \$i"
mkdir -p "$work/cross" "$work/emulated"
cat >"$work/cross/Dockerfile" <<EOF
FROM --platform=\$BUILDPLATFORM $base AS build
ARG TARGETARCH
RUN mkdir /out && ($work_cmd) > /out/app-\$TARGETARCH
FROM $base
ARG TARGETARCH
COPY --from=build /out/app-\$TARGETARCH /usr/local/bin/app
EOF
cat >"$work/emulated/Dockerfile" <<EOF
FROM $base
RUN mkdir /out && ($work_cmd) > /out/app
EOF

bstore=$work/berth
bah="buildah --root $work/buildah/root --runroot $work/buildah/run --storage-driver overlay"
pod="podman --root $work/podman/root --runroot $work/podman/run --storage-driver overlay"
docker=$BERTH_DOCKER

printf '\n==> preparing: the base image (both platforms) in each tool\n' >&2
"$BERTH" --root "$bstore" pull -q --all-platforms "$base" >/dev/null
for p in linux/amd64 linux/arm64; do
	$bah pull -q --tls-verify=false --platform "$p" "$base" >/dev/null
	$pod pull -q --tls-verify=false --platform "$p" "$base" >/dev/null
done

berth_cmd() { echo "$BERTH --root $bstore build -q --no-cache --platform $platforms -t bench-mp:$1 $work/$1"; }
buildah_cmd() { echo "$bah build -q --no-cache --tls-verify=false --platform $platforms --manifest bench-mp-$1 $work/$1"; }
podman_cmd() { echo "$pod build -q --no-cache --tls-verify=false --platform $platforms --manifest bench-mp-$1 $work/$1"; }
clean_buildah() { echo "$bah manifest rm bench-mp-$1 >/dev/null 2>&1 || true; $bah rmi --prune >/dev/null 2>&1 || true"; }
clean_podman() { echo "$pod manifest rm bench-mp-$1 >/dev/null 2>&1 || true; $pod image prune -f >/dev/null 2>&1 || true"; }
versions=(--version-for berth="$BERTH --version" --version-for buildah="buildah --version" --version-for podman="podman --version")
note="amd64+arm64, CPU work = busybox sh loop of $loops iterations; berth $rev"

for s in "${scenarios[@]}"; do
	case $s in
	cross | emulated)
		bench --name "multiplatform-$s" --runs "$runs" --baseline buildah --order rotate \
			--tool berth="$(berth_cmd "$s")" \
			--tool buildah="$(buildah_cmd "$s")" --cleanup-for buildah="$(clean_buildah "$s")" \
			--tool podman="$(podman_cmd "$s")" --cleanup-for podman="$(clean_podman "$s")" \
			--cleanup sync "${versions[@]}" \
			--note "$s: --no-cache every run; $note"
		;;
	cached)
		bench_need_dockerd
		$docker pull -q "$base" >/dev/null
		bench --name multiplatform-cached --runs "$runs" --warmup 1 --baseline buildkit \
			--tool berth="$BERTH --root $bstore build -q --platform $platforms -t bench-mp:cached $work/cross" \
			--tool buildkit="DOCKER_BUILDKIT=1 $docker build --network host -q -t bench-mp:cached $work/cross" \
			--version-for berth="$BERTH --version" --version-for buildkit="$docker version --format '{{.Server.Version}}'" \
			--note "fully cached: berth two platforms, BuildKit the host's only; $note"
		;;
	*)
		echo "multiplatform.sh: unknown scenario $s (cross, emulated, cached)" >&2
		exit 2
		;;
	esac
done
