# shellcheck shell=bash
# Source from a benchmark script: `source "$(dirname "$0")/lib/common.sh"`.
# Sets BENCH_ROOT (repo root), BERTH (the berth binary, default target/release/berth),
# exports the registry and private-dockerd variables (BERTH_REGISTRY_PLAIN, DOCKER_HOST,
# BERTH_DOCKER, ...; see scripts/ci/registry.sh and scripts/ci/dockerd.sh) and defines:
#   bench ARGS...               bench/lib/bench.py ARGS...
#   bench_need_registry         start the plain registry (no-op when running)
#   bench_need_fixtures [SET]   scripts/ci/fixtures.sh basic|all (fast when up to date)
#   bench_need_dockerd          start the private dockerd
#   bench_need_podman           write the podman/buildah/skopeo drop-ins
#   bench_need_berth            build berth in release mode unless $BERTH exists
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BERTH=${BERTH:-$BENCH_ROOT/target/release/berth}
eval "$("$BENCH_ROOT/scripts/ci/registry.sh" env)"
eval "$("$BENCH_ROOT/scripts/ci/dockerd.sh" env)"
export BERTH BENCH_ROOT

bench() { "$BENCH_ROOT/bench/lib/bench.py" "$@"; }
bench_need_registry() { "$BENCH_ROOT/scripts/ci/registry.sh" start plain; }
bench_need_fixtures() { "$BENCH_ROOT/scripts/ci/fixtures.sh" "${1:-basic}"; }
bench_need_dockerd() { "$BENCH_ROOT/scripts/ci/dockerd.sh" start; }
bench_need_podman() { "$BENCH_ROOT/scripts/ci/podman-setup.sh"; }
bench_need_berth() {
	[[ -x $BERTH ]] || (cd "$BENCH_ROOT" && cargo build --release -p berth)
}
