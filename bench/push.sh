#!/usr/bin/env bash
# Push of library/big (9 layers, 375 MB compressed) to the local plain registry, three cases:
#
#   push-big-full    to a new repository, every blob uploaded: berth (store holding the
#                    compressed blobs, no known source repository) vs skopeo (from an OCI dir)
#                    vs podman (recompresses from its storage). Baseline skopeo.
#   push-big-repeat  the same image to the same repository again (everything present):
#                    berth vs docker vs skopeo vs podman. Baseline docker.
#   push-big-mount   to a new repository of the registry the image was pulled from (blobs
#                    mounted): berth vs docker vs skopeo (registry to registry). Baseline docker.
#
# Usage: bench/push.sh [RUNS]        (default 5; env BERTH, BENCH_WORK)
#
# Every full/mount run pushes to a repository that did not exist before (names carry a stamp
# and the run number). containers/image's blob-info cache (skopeo: /var/lib/containers/cache,
# podman: GRAPHROOT/cache) is deleted before every run, untimed, or skopeo and podman would
# mount the blobs from the previous run's repository instead of uploading them. Nothing is
# unpacked, so the ext4 inode-reuse trap does not apply; runs are alternated all the same.
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
runs=${1:-5}
bench_need_fixtures basic
bench_need_podman
bench_need_dockerd
bench_need_berth

reg=$BERTH_REGISTRY_PLAIN
# The OCI-manifest tag: skopeo 1.9's oci: transport cannot read Docker-typed manifests.
img=$reg/library/big:oci
stamp=$(date +%Y%m%d%H%M%S)
work=${BENCH_WORK:-/var/tmp/berth-bench-push}
mkdir -p "$work"
work=$(cd "$work" && pwd)
rm -rf "${work:?}"/*
docker=${BERTH_DOCKER:-docker}
pod="podman --root $work/podman/root --runroot $work/podman/run --tmpdir $work/podman/tmp"
caches="rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb $work/podman/root/cache/blob-info-cache-v1.boltdb"

say() { printf '\n==> %s\n' "$*" >&2; }
say "preparing: OCI dir, berth stores, podman storage, docker image"
skopeo copy -q --src-tls-verify=false "docker://$img" "oci:$work/oci:big"
# Store "full": the compressed blobs, named only bench/big:src (no repository to mount from).
"$BERTH" --root "$work/berth-full" image copy -q "oci:$work/oci:big" berth:bench/big:src
# Store "pulled": pulled from library/big, so pushes to the same registry can mount.
"$BERTH" --root "$work/berth-pulled" pull -q "$img" >/dev/null
$pod pull -q "$img" >/dev/null
"$docker" pull -q "$img" >/dev/null

# berth_push STORE SRC TARGET: tag, push, then drop the tag and the repo digest the push
# recorded (so the next run has no mount candidate but library/big).
cat >"$work/berth-push.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
"$BERTH" --root "\$1" tag "\$2" "\$3"
"$BERTH" --root "\$1" push "\$3"
EOF
cat >"$work/berth-untag.sh" <<EOF
#!/usr/bin/env bash
# Untag TARGET and remove every repo digest of its repository.
set -euo pipefail
repo=\${2%:*}
"$BERTH" --root "\$1" rmi "\$2" >/dev/null
for d in \$("$BERTH" --root "\$1" inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "\$3"); do
	[[ \$d == "\$repo@"* ]] && "$BERTH" --root "\$1" rmi "\$d" >/dev/null
done
exit 0
EOF
chmod +x "$work/berth-push.sh" "$work/berth-untag.sh"

common=(--runs "$runs" --env "BENCH_WORK=$work")
# versions TOOL...: --version-for options for the tools of one benchmark.
versions() {
	local t
	for t in "$@"; do
		case $t in
		berth) printf '%s\0' --version-for "berth=$BERTH --version" ;;
		docker) printf '%s\0' --version-for "docker=$docker --version" ;;
		*) printf '%s\0' --version-for "$t=$t --version" ;;
		esac
	done
}
mapfile -d '' v_full < <(versions berth skopeo podman)
mapfile -d '' v_repeat < <(versions berth docker skopeo podman)
mapfile -d '' v_mount < <(versions berth docker skopeo)
rev=$(cd "$BENCH_ROOT" && git rev-parse --short HEAD)

say "push-big-full"
new="$reg/bench-push/full-$stamp-\$BENCH_TOOL-\$BENCH_RUN:x"
bench --name push-big-full "${common[@]}" --baseline skopeo \
	--setup "$caches" \
	--tool berth="$work/berth-push.sh $work/berth-full bench/big:src $new" \
	--cleanup-for berth="$work/berth-untag.sh $work/berth-full $new bench/big:src" \
	--tool skopeo="skopeo copy -q --dest-tls-verify=false oci:$work/oci:big docker://$new" \
	--tool podman="$pod push -q --tls-verify=false $img docker://$new" \
	"${v_full[@]}" \
	--note "alternated; new repository every run; blob-info caches deleted before every run; berth pushes the stored compressed blobs (manifest digest kept), skopeo from an OCI dir, podman recompresses; berth $rev"

say "push-big-repeat"
same="$reg/bench-push/repeat-$stamp-\$BENCH_TOOL:x"
bench --name push-big-repeat "${common[@]}" --baseline docker \
	--prepare "$work/berth-push.sh $work/berth-full bench/big:src $reg/bench-push/repeat-$stamp-berth:x && skopeo copy -q --dest-tls-verify=false oci:$work/oci:big docker://$reg/bench-push/repeat-$stamp-skopeo:x && $pod push -q --tls-verify=false $img docker://$reg/bench-push/repeat-$stamp-podman:x && $docker tag $img $reg/bench-push/repeat-$stamp-docker:x && $docker push -q $reg/bench-push/repeat-$stamp-docker:x" \
	--tool berth="$BERTH --root $work/berth-full push -q $same" \
	--tool docker="$docker push -q $same" \
	--tool skopeo="skopeo copy -q --dest-tls-verify=false oci:$work/oci:big docker://$same" \
	--tool podman="$pod push -q --tls-verify=false $img docker://$same" \
	"${v_repeat[@]}" \
	--note "alternated; the same repository again, every blob present; berth $rev"

say "push-big-mount"
new="$reg/bench-push/mount-$stamp-\$BENCH_TOOL-\$BENCH_RUN:x"
bench --name push-big-mount "${common[@]}" --baseline docker \
	--setup "$caches" \
	--tool berth="$work/berth-push.sh $work/berth-pulled $img $new" \
	--cleanup-for berth="$work/berth-untag.sh $work/berth-pulled $new $img" \
	--tool docker="$docker tag $img $new && $docker push -q $new" \
	--cleanup-for docker="$docker rmi $new >/dev/null" \
	--tool skopeo="skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$img docker://$new" \
	"${v_mount[@]}" \
	--finish "$docker rmi $img >/dev/null; rm -rf $work" \
	--note "alternated; new repository every run on the registry the image came from (cross-repository mounts); berth $rev"
