#!/usr/bin/env bash
# berth's one test command: format check, build, the test environment, the whole test suite
# (unit, conformance, integration against real registries, podman, docker and containers),
# then clippy. Prints a summary and exits non-zero when any step failed.
#
# Usage: scripts/test.sh [options] [-- ARGS for the test runner]
#   --quick      skip the slow tests (names starting with slow_: the ~512 MB image)
#   --no-setup   do not start registries/dockerd or build fixtures (they must already run)
#   --no-lint    skip cargo fmt --check and clippy
#   -p CRATE     only this crate's tests (repeatable; default the whole workspace)
#   ARGS after -- go to `cargo nextest run` (or `cargo test`), e.g. a test name filter.
#
# Environment: BERTH_CI_STATE (default /tmp/berth-ci) as for scripts/ci/*.sh;
# BERTH_SHARED_DIR: the material kept beside the repository, not in it (default ../shared: the
# BuildKit/.dockerignore conformance corpora in corpus/, the seed tour in seed/). Without it
# those suites are skipped and listed as skipped in the summary; under CI (CI set) that fails;
# BERTH_TEST_RUNNER=nextest|cargo to force a runner (default: nextest when installed);
# BERTH_TEST_THREADS (default 4: most integration tests wait on I/O, not CPU).
#
# Needs what scripts/ci/install-deps.sh installs (checked, not installed: that is .ci/run's
# job) and root for the container and overlayfs tests. The set-up steps are idempotent and take
# about a second when everything already runs; the first run builds the fixtures (~4 min).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

quick=0 setup=1 lint=1
crates=()
runner_args=()
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--no-setup) setup=0 ;;
	--no-lint) lint=0 ;;
	-p)
		shift
		crates+=(-p "${1:?-p needs a crate}")
		;;
	--)
		shift
		runner_args=("$@")
		break
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "test.sh: unknown option $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done
((${#crates[@]})) || crates=(--workspace)

if [[ -t 2 && -z ${NO_COLOR:-} ]]; then B=$'\033[1m' R=$'\033[31m' G=$'\033[32m' N=$'\033[0m'; else B='' R='' G='' N=''; fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N" >&2; }
declare -a summary=()
failed=0
started=$SECONDS
# run_step NAME CMD...: runs, records the result; never exits.
run_step() {
	local name=$1 t0=$SECONDS rc=0
	shift
	say "$name"
	"$@" || rc=$?
	if ((rc == 0)); then
		summary+=("${G}ok${N}      $name ($((SECONDS - t0)) s)")
	else
		summary+=("${R}FAILED${N}  $name (exit $rc, $((SECONDS - t0)) s)")
		failed=1
	fi
	return 0
}
finish() {
	printf '\n%s==> summary (%d s)%s\n' "$B" "$((SECONDS - started))" "$N" >&2
	printf '  %s\n' "${summary[@]}" >&2
	if ((failed)); then
		printf '%sscripts/test.sh: FAILED%s\n' "$R" "$N" >&2
		exit 1
	fi
	if ((${#skipped[@]})); then
		printf '%sscripts/test.sh: all passed, %d suite(s) skipped for want of ../shared%s\n' "$G" "${#skipped[@]}" "$N" >&2
	else
		printf '%sscripts/test.sh: all passed%s\n' "$G" "$N" >&2
	fi
}

if ((lint)) && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
	echo "test.sh: rustfmt or clippy is missing (rustup component add rustfmt clippy)" >&2
	exit 1
fi
# CI (a clean clone) must build exactly the committed Cargo.lock.
locked=()
[[ -n ${CI:-} ]] && locked=(--locked)

# 1. Formatting: seconds, so first.
if ((lint)); then
	run_step "cargo fmt --check" cargo fmt --all --check
fi

# 2. Build everything the tests run: the binaries (berth, berth-token-server for
#    registry.sh's token config, helpers) and the test targets. A build failure stops here.
say "cargo build --workspace --all-targets"
if ! cargo build --workspace --bins --tests "${locked[@]}"; then
	summary+=("${R}FAILED${N}  build")
	failed=1
	finish
fi
summary+=("${G}ok${N}      build")

# 3. The environment the integration tests need.
if ((setup)); then
	say "test environment: packages, registries, fixtures, podman config, dockerd"
	if ! scripts/ci/install-deps.sh --check; then
		echo "test.sh: packages are missing: run scripts/ci/install-deps.sh (as root) or .ci/run" >&2
		exit 1
	fi
	scripts/ci/registry.sh start all
	FIXTURES=all scripts/ci/fixtures.sh
	# Writes only berth-ci drop-ins under /etc/containers; idempotent.
	scripts/ci/podman-setup.sh
	scripts/ci/dockerd.sh start
fi
eval "$(scripts/ci/registry.sh env)"
eval "$(scripts/ci/dockerd.sh env)"
export BERTH_CI_STATE BERTH_REGISTRY_PLAIN
# The tests start their own berth stores; keep the developer's out of reach.
unset BERTH_ROOT DOCKER_DEFAULT_PLATFORM
# Rust test binaries print backtraces of failures: make them readable.
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

# Material beside the repository (not ours to commit): skipped visibly when absent, a failure
# under CI. The tests themselves skip or fail the same way (berth-testkit's shared module).
shared=${BERTH_SHARED_DIR:-$ROOT/../shared}
declare -a skipped=()
check_shared() { # check_shared SUITE PATH-UNDER-SHARED
	[[ -e $shared/$2 ]] && return 0
	if [[ -n ${CI:-} && ${CI} != false && ${CI} != 0 ]]; then
		summary+=("${R}FAILED${N}  $1: $shared/$2 is missing (CI must not skip it; set BERTH_SHARED_DIR)")
		failed=1
	else
		skipped+=("$1")
		summary+=("skipped $1: $shared/$2 not found (set BERTH_SHARED_DIR or put the shared material at ../shared)")
		echo "test.sh: SKIPPED $1: $shared/$2 not found" >&2
	fi
}
check_shared "berth-dockerfile corpus conformance (tests/corpus.rs)" corpus/buildkit/FORMAT.md
check_shared "berth-dockerfile .dockerignore corpus (tests/corpus.rs)" corpus/dockerignore/FORMAT.md
((quick)) || check_shared "seed tour (crates/berth/tests/tour.rs, slow_seed_tour)" seed/docker-images.md

# 4. The test suite.
filters=()
if ((quick)); then
	filters=(--skip slow_)
fi
threads=${BERTH_TEST_THREADS:-4}
runner=${BERTH_TEST_RUNNER:-}
if [[ -z $runner ]]; then
	if cargo nextest --version >/dev/null 2>&1; then runner=nextest; else runner=cargo; fi
fi
case $runner in
nextest)
	# nextest runs every test in its own process, several binaries at once; it does not run
	# doctests, so those run separately.
	nextest_filter=()
	((quick)) && nextest_filter=(-E 'not test(/^slow_/)')
	run_step "cargo nextest run ${crates[*]}" cargo nextest run "${crates[@]}" "${locked[@]}" --no-fail-fast \
		--test-threads "$threads" --failure-output final --status-level fail "${nextest_filter[@]}" \
		"${runner_args[@]}"
	run_step "cargo test --doc ${crates[*]}" cargo test "${crates[@]}" "${locked[@]}" --doc
	;;
cargo)
	run_step "cargo test ${crates[*]}" cargo test "${crates[@]}" "${locked[@]}" --no-fail-fast -- \
		--test-threads "$threads" "${filters[@]}" "${runner_args[@]}"
	;;
*)
	echo "test.sh: BERTH_TEST_RUNNER must be nextest or cargo, not $runner" >&2
	exit 2
	;;
esac

# 5. Lints, on everything including the tests.
if ((lint)); then
	run_step "cargo clippy --workspace --all-targets -D warnings" \
		cargo clippy --workspace --all-targets "${locked[@]}" -- -D warnings
fi

cd "$ROOT"
finish
