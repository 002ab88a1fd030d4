#!/usr/bin/env bash
# `build` of a ~200 MB / 10,000-file context: berth (release) vs BuildKit (dockerd 20.10,
# `DOCKER_BUILDKIT=1 docker build`) vs buildah (`bud --layers`), alternated, medians, ratios
# to BuildKit. The Dockerfile (issue 4's benchmark):
#
#   FROM localhost:5000/library/debian:bookworm      (the local fixture, already pulled)
#   COPY . /app/
#   RUN  2,000 files of 4 KiB (8 MB) written by one process
#
# Three scenarios, each its own bench run:
#   build-cold     base image local, build cache empty: every tool deletes its build result
#                  and build cache after each run (berth: rmi + builder prune -af; docker:
#                  rmi + builder prune -af, which also drops BuildKit's copy of the context;
#                  buildah: rmi + rmi --prune of the --layers intermediates).
#   build-cached   nothing changed since the previous (warm-up) build: fully cached.
#   build-change   one context file changed before each run (appended line): COPY and RUN rerun.
#
# Usage: bench/build.sh [RUNS] [SCENARIO...]   (default 5 runs; all scenarios)
#        env BERTH=path/to/berth, BENCH_WORK=dir (context and stores; default /var/tmp/...)
#
# ext4 inode-reuse trap (bench/README.md): in build-cold every tool deletes ~10k files after
# each run, and buildah deletes its working container (~10k files) at the end of every build,
# so without care a timed run pays for the previous tool's deletions: in an unpaused run of
# build-change berth always followed buildah and spent most of its time in ext4's inode
# allocator (perf: find_inode_bit, recently_deleted, find_get_block_common).
# So build-cold and build-change pause BENCH_PAUSE seconds (default 61) after every run's
# cleanup and sync, and rotate the order; build-cached deletes nothing and does not pause.
# All tools use the host network for RUN and quiet output (-q).
# The context is generated deterministically (seeded PRNG) once per BENCH_WORK.
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
runs=${1:-5}
shift || true
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(cold cached change)
bench_need_fixtures all
bench_need_dockerd
bench_need_podman
bench_need_berth

base=$BERTH_REGISTRY_PLAIN/library/debian:bookworm
work=${BENCH_WORK:-/var/tmp/berth-bench-build}
mkdir -p "$work"
work=$(cd "$work" && pwd)
ctx=$work/context
rev=$(cd "$BENCH_ROOT" && git rev-parse --short HEAD)
tag=bench-build:latest
pause=${BENCH_PAUSE:-61}

# --- the context: 100 directories × 100 files, ≈200 MB, half random bytes, half text.
gen_context() {
	rm -rf "$ctx" "$ctx.tmp"
	python3 - "$ctx.tmp" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(20261127)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4096)]
sizes = [int(rng.lognormvariate(8.6, 1.3)) + 64 for _ in range(10000)]
scale = 200_000_000 / sum(sizes)
total = 0
for i, s in enumerate(sizes):
    d = os.path.join(root, f"d{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    n = max(1, int(s * scale))
    if i % 2:
        data = rng.randbytes(n)
    else:
        out, size = [], 0
        while size < n:
            w = rng.choice(words)
            out.append(w)
            size += len(w) + 1
        data = b" ".join(out)[:n]
    with open(os.path.join(d, f"f{i:05d}.{'bin' if i % 2 else 'txt'}"), "wb") as f:
        f.write(data)
    total += n
print(f"context: 10000 files, {total / 1e6:.1f} MB", file=sys.stderr)
PY
	cat >"$ctx.tmp/Dockerfile" <<EOF
FROM $base
COPY . /app/
RUN mkdir /gen && head -c 8192000 /dev/urandom | split -b 4096 -a 4 - /gen/f && ls /gen | wc -l
EOF
	# Fixed mtimes: the same context for every tool and every run.
	find "$ctx.tmp" -exec touch -h -d '2026-01-01 00:00:00' {} +
	mv "$ctx.tmp" "$ctx"
	echo "1" >"$ctx.done"
}
[[ -f $ctx.done && -f $ctx/Dockerfile ]] || gen_context
du -sh --apparent-size "$ctx" >&2
changed=$ctx/d050/f05000.txt

# --- the tools, each with its own store.
bstore=$work/berth
bah="buildah --root $work/buildah/root --runroot $work/buildah/run --storage-driver overlay"
docker=$BERTH_DOCKER
berth_build="$BERTH --root $bstore build -q -t $tag $ctx"
docker_build="DOCKER_BUILDKIT=1 $docker build --network host -q -t $tag $ctx"
buildah_build="$bah bud --layers --network host --format docker -q -t $tag $ctx"

printf '\n==> preparing: the base image in each tool\n' >&2
"$BERTH" --root "$bstore" pull -q "$base" >/dev/null
$docker pull -q "$base" >/dev/null
$bah pull -q --tls-verify=false "$base" >/dev/null

clean_berth="$BERTH --root $bstore rmi -f $tag >/dev/null 2>&1 || true; $BERTH --root $bstore builder prune -af >/dev/null"
clean_docker="$docker rmi -f $tag >/dev/null 2>&1 || true; $docker builder prune -af >/dev/null"
clean_buildah="$bah rmi -f $tag >/dev/null 2>&1 || true; $bah rmi --prune >/dev/null 2>&1 || true"
versions=(--version-for berth="$BERTH --version" --version-for buildkit="$docker version --format '{{.Server.Version}}'"
	--version-for buildah="buildah --version")
common_note="alternated; RUN writes 2,000 files / 8 MB; context $(du -sh --apparent-size "$ctx" | cut -f1) / 10,000 files; berth $rev"

for s in "${scenarios[@]}"; do
	case $s in
	cold)
		# Start from nothing cached.
		bash -c "$clean_berth; $clean_docker; $clean_buildah"
		bench --name build-cold --runs "$runs" --baseline buildkit --order rotate --pause "$pause" \
			--tool berth="$berth_build" --cleanup-for berth="$clean_berth" \
			--tool buildkit="$docker_build" --cleanup-for buildkit="$clean_docker" \
			--tool buildah="$buildah_build" --cleanup-for buildah="$clean_buildah" \
			--cleanup sync "${versions[@]}" \
			--note "cold: base local, build cache emptied after every run; rotated, ${pause}s pause after each cleanup+sync (ext4 inode-reuse trap); $common_note"
		;;
	cached)
		bench --name build-cached --runs "$runs" --warmup 1 --baseline buildkit \
			--tool berth="$berth_build" --tool buildkit="$docker_build" --tool buildah="$buildah_build" \
			--cleanup sync "${versions[@]}" \
			--note "fully cached: nothing changed since the warm-up build; $common_note"
		;;
	change)
		# The warm-up run builds the current context; every run then sees one changed file.
		# The file is restored afterwards, so the context stays the generated one.
		cp -p "$changed" "$work/changed.orig"
		bench --name build-change --finish "cp -p $work/changed.orig $changed" --runs "$runs" --warmup 1 --baseline buildkit \
			--order rotate --pause "$pause" \
			--setup "echo \"\$BENCH_TOOL \$BENCH_RUN \$(date +%s%N)\" >> $changed" \
			--tool berth="$berth_build" --tool buildkit="$docker_build" --tool buildah="$buildah_build" \
			--cleanup sync "${versions[@]}" \
			--note "one context file changed (a line appended to d050/f05000.txt) before each run: COPY . and RUN rerun; rotated, ${pause}s pause after each run+sync (ext4 inode-reuse trap: buildah deletes its working container); $common_note"
		;;
	*)
		echo "build.sh: unknown scenario $s (cold, cached, change)" >&2
		exit 2
		;;
	esac
done
