#!/usr/bin/env bash
# Build the fixture images offline and push them to the plain registry (127.0.0.1:5000).
# The list, with what each stand-in contains, is in scripts/ci/FIXTURES.md.
#
# Usage: scripts/ci/fixtures.sh [basic|all]     (or FIXTURES=basic|all; default basic)
#   basic  busybox family (docker, oci, multi-arch index and list, zstd, uncompressed),
#          the busybox-based stand-ins (nginx, redis, grafana) and library/big (~512 MB).
#   all    basic + debian:bookworm from debootstrap (needs deb.debian.org) and the images
#          built on it (python, node, mysql, ubuntu, jenkins, ubi8 stand-ins).
#
# Environment:
#   BERTH_CI_STATE            state dir (default /tmp/berth-ci)
#   BERTH_CI_CACHE            debootstrap and apt-built layer cache (default $BERTH_CI_STATE/cache)
#   BERTH_FIXTURES_REGISTRY   push target (default localhost:$BERTH_PORT_PLAIN); the plain
#                             registry is started when it is not running.
#   DEBIAN_MIRROR             default http://deb.debian.org/debian
#
# Outputs (under $BERTH_CI_STATE/fixtures):
#   oci/            an OCI image layout holding every fixture blob; index.json names each
#                   tag with org.opencontainers.image.ref.name = "library/busybox:latest".
#                   Docker-typed manifests keep their Docker media types there, so skopeo's
#                   oci: transport will not read those entries; berth and umoci can.
#   fixtures.tsv    one line per tag: repo:tag <TAB> digest <TAB> mediaType <TAB> bytes
#                   (manifest + config + layers, deduplicated; for an index, all platforms).
#                   Tags of an earlier "all" run stay listed after a "basic" run.
#   build-times.tsv seconds spent on each step of the last run that did work
#
# Reruns are cheap: every layer is built once (records under fixtures/records, the
# debootstrap and apt layers under the cache), and a tag is pushed only when the registry
# does not already serve the expected digest. Everything is deterministic except the
# debootstrap/apt layers, which is why those are cached per machine.
set -eEuo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'ci_log "error: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)"' ERR

MODE=${1:-${FIXTURES:-basic}}
[[ $MODE == basic || $MODE == all ]] || ci_die "unknown fixture set '$MODE' (use basic or all)"
REGISTRY=${BERTH_FIXTURES_REGISTRY:-localhost:$BERTH_PORT_PLAIN}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FIX=$BERTH_CI_STATE/fixtures
OCI=$FIX/oci
REC=$FIX/records
WORK=$FIX/work
SRC=$BERTH_CI_ROOT/tests/fixtures-src
EPOCH=1704067200 # 2024-01-01T00:00:00Z: mtime of every synthetic file
CREATED=2024-01-01T00:00:00Z
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
export LC_ALL=C

# Recipe versions of the expensive, cached steps. Bump one when its recipe changes.
BIG_KEY=big-v1
DEBIAN_KEY=debian-bookworm-minbase-v2
PYTHON_KEY=python-v1
NODE_KEY=node-v1

MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
MT_OCI_CONFIG=application/vnd.oci.image.config.v1+json
MT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
MT_DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
MT_DOCKER_CONFIG=application/vnd.docker.container.image.v1+json
ACCEPT="$MT_OCI_MANIFEST, $MT_OCI_INDEX, $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST"

for tool in skopeo jq pigz zstd tar sha256sum python3 curl busybox; do
	command -v "$tool" >/dev/null || ci_die "$tool not found; run scripts/ci/install-deps.sh"
done
BUSYBOX_BIN=$(command -v busybox)
# A dynamic executable names its loader in the first page (PT_INTERP).
if head -c 4096 "$BUSYBOX_BIN" | grep -qa 'ld-linux'; then
	ci_die "$BUSYBOX_BIN is dynamically linked; install busybox-static"
fi

# Cheap layers are cached under a key that changes with anything that shapes them.
RECIPE=$(cat "$0" "$BUSYBOX_BIN" "$SRC/gen-text.py" "$SRC"/alpine-compat/usr/local/bin/* | sha256sum | cut -c1-12)

mkdir -p "$OCI/blobs/sha256" "$REC" "$WORK" "$BERTH_CI_CACHE"
ci_lock fixtures
[[ -f $OCI/oci-layout ]] || echo '{"imageLayoutVersion":"1.0.0"}' >"$OCI/oci-layout"

# ---------------------------------------------------------------------------- timing
# Steps do not nest: call step_end before the next step_start.
declare -a TIMES=()
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs_since() { # secs_since MS: "12.34"
	local d=$(($(now_ms) - $1))
	printf '%d.%02d' $((d / 1000)) $((d % 1000 / 10))
}
step_start() { STEP_NAME=$1 STEP_T0=$(now_ms); }
step_end() {
	local dt
	dt=$(secs_since "$STEP_T0")
	TIMES+=("$STEP_NAME	$dt")
	ci_log "$STEP_NAME: ${dt}s"
}

# ---------------------------------------------------------------------------- safety
# Refuse to delete a directory that has something mounted under it (a leftover /dev or
# /proc bind from an interrupted chroot step would otherwise take host files with it).
assert_no_mounts() {
	local d
	d=$(realpath "$1")
	if awk -v p="$d" '$5 == p || index($5, p "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		ci_die "refusing to delete in $d: something is mounted under it (umount it first)"
	fi
}
safe_rm() {
	local d
	for d in "$@"; do
		[[ -e $d || -L $d ]] || continue
		assert_no_mounts "$d"
		rm -rf "$d"
	done
}

# ---------------------------------------------------------------------------- blobs
# blob_put FILE: move FILE into the layout; sets BLOB (sha256:…) and BLOB_SIZE.
blob_put() {
	local f=$1 hex
	hex=$(sha256sum "$f" | cut -c1-64)
	BLOB=sha256:$hex
	BLOB_SIZE=$(stat -c %s "$f")
	if [[ -e $OCI/blobs/sha256/$hex ]]; then
		rm -f "$f"
	else
		chmod 644 "$f"
		mv -f "$f" "$OCI/blobs/sha256/$hex"
	fi
}

# blob_put_json JSON: store a JSON document exactly as given (no trailing newline).
blob_put_json() {
	local tmp
	tmp=$(mktemp "$WORK/json.XXXXXX")
	printf '%s' "$1" >"$tmp"
	blob_put "$tmp"
}

# ---------------------------------------------------------------------------- layers
# tar_tree DIR OUT [synthetic]: a deterministic tar of DIR's contents (entries "bin/…",
# no "./" prefix, sorted, whole-second mtimes, no atime/ctime, numeric owners). With
# "synthetic" every owner becomes 0:0 and every mtime $EPOCH.
tar_tree() {
	local dir=$1 out=$2 extra=()
	if [[ ${3:-} == synthetic ]]; then
		extra=(--owner=0 --group=0 "--mtime=@$EPOCH")
	fi
	(cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | sort |
		tar --sort=name --format=posix --numeric-owner "${extra[@]}" \
			--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime,delete=mtime \
			-cf - -T -) >"$out"
}

# layer_from_tar KEY TAR COMP: compress TAR (gzip|zstd|none) into a layer blob, once.
# Sets LAYER to the record file: {"diff_id","digest","size","comp"}.
layer_from_tar() {
	local key=$1 tar=$2 comp=$3 diff tmp
	LAYER=$REC/layer-$key-$comp.json
	if [[ -s $LAYER ]] && [[ -e $OCI/blobs/sha256/$(jq -r '.digest[7:]' "$LAYER") ]]; then
		return 0
	fi
	diff=sha256:$(sha256sum "$tar" | cut -c1-64)
	tmp=$(mktemp "$WORK/layer.XXXXXX")
	case $comp in
	gzip) pigz -n -6 -c "$tar" >"$tmp" ;;
	zstd) zstd -q -3 -T1 -c "$tar" >"$tmp" ;;
	none) cp "$tar" "$tmp" ;;
	*) ci_die "unknown compression $comp" ;;
	esac
	blob_put "$tmp"
	jq -cn --arg diff "$diff" --arg digest "$BLOB" --argjson size "$BLOB_SIZE" --arg comp "$comp" \
		'{diff_id: $diff, digest: $digest, size: $size, comp: $comp}' >"$LAYER.tmp"
	mv -f "$LAYER.tmp" "$LAYER"
}

layer_cached() { # layer_cached KEY COMP: true (and LAYER set) when the record and blob exist
	LAYER=$REC/layer-$1-$2.json
	[[ -s $LAYER ]] && [[ -e $OCI/blobs/sha256/$(jq -r '.digest[7:]' "$LAYER") ]]
}

# ---------------------------------------------------------------------------- images
# image NAME FORMAT(oci|docker) PLATFORM(os/arch[/variant]) CONFIG_JSON HISTORY_JSON LAYER...
# CONFIG_JSON is the "config" object (Env, Cmd, …). HISTORY_JSON is an array of history
# entries ({"created_by", "empty_layer"?}); its non-empty entries must match the layers.
# Writes config and manifest blobs; sets IMAGE to the record file:
# {"mediaType","digest","size","platform"}.
image() {
	local name=$1 format=$2 platform=$3 cfg=$4 hist=$5
	shift 5
	local os arch variant layers config manifest cfg_mt man_mt
	IFS=/ read -r os arch variant <<<"$platform"
	layers=$(jq -cs '.' "$@")
	if [[ $format == docker ]]; then
		cfg_mt=$MT_DOCKER_CONFIG man_mt=$MT_DOCKER_MANIFEST
		jq -e 'all(.comp == "gzip")' <<<"$layers" >/dev/null ||
			ci_die "image $name: Docker manifests here carry gzip layers only"
	else
		cfg_mt=$MT_OCI_CONFIG man_mt=$MT_OCI_MANIFEST
	fi
	config=$(jq -cn --arg os "$os" --arg arch "$arch" --arg variant "$variant" \
		--arg created "$CREATED" --argjson cfg "$cfg" --argjson hist "$hist" --argjson layers "$layers" '
		if ($hist | map(select(.empty_layer != true)) | length) != ($layers | length) then
			error("history does not match the layers") else . end |
		{architecture: $arch, config: $cfg, created: $created,
		 history: [$hist[] | {created: $created} + .],
		 os: $os,
		 rootfs: {diff_ids: [$layers[].diff_id], type: "layers"}}
		+ (if $variant != "" then {variant: $variant} else {} end)')
	blob_put_json "$config"
	manifest=$(jq -n --indent 3 --arg format "$format" --arg man_mt "$man_mt" --arg cfg_mt "$cfg_mt" \
		--arg cfg "$BLOB" --argjson cfg_size "$BLOB_SIZE" --argjson layers "$layers" '
		def lmt: if $format == "docker" then "application/vnd.docker.image.rootfs.diff.tar.gzip"
			elif .comp == "gzip" then "application/vnd.oci.image.layer.v1.tar+gzip"
			elif .comp == "zstd" then "application/vnd.oci.image.layer.v1.tar+zstd"
			else "application/vnd.oci.image.layer.v1.tar" end;
		{schemaVersion: 2, mediaType: $man_mt,
		 config: {mediaType: $cfg_mt, size: $cfg_size, digest: $cfg},
		 layers: [$layers[] | {mediaType: lmt, size: .size, digest: .digest}]}')
	blob_put_json "$manifest"
	IMAGE=$REC/image-$name.json
	jq -cn --arg mt "$man_mt" --arg d "$BLOB" --argjson s "$BLOB_SIZE" \
		--arg os "$os" --arg arch "$arch" --arg variant "$variant" '
		{mediaType: $mt, digest: $d, size: $s,
		 platform: ({architecture: $arch, os: $os} + (if $variant != "" then {variant: $variant} else {} end))}' >"$IMAGE"
}

# index NAME FORMAT(oci|docker) IMAGE_RECORD...: an OCI index or a Docker manifest list.
index() {
	local name=$1 format=$2 mt doc
	shift 2
	[[ $format == docker ]] && mt=$MT_DOCKER_LIST || mt=$MT_OCI_INDEX
	doc=$(jq -s --indent 3 --arg mt "$mt" '{schemaVersion: 2, mediaType: $mt,
		manifests: [.[] | {mediaType, size, digest, platform}]}' "$@")
	blob_put_json "$doc"
	IMAGE=$REC/image-$name.json
	jq -cn --arg mt "$mt" --arg d "$BLOB" --argjson s "$BLOB_SIZE" \
		'{mediaType: $mt, digest: $d, size: $s}' >"$IMAGE"
}

declare -a TAGS=() # "repo:tag record-file"
tag() {
	local rec=$REC/image-$2.json
	[[ -s $rec ]] || ci_die "tag $1: no image $2"
	TAGS+=("$1 $rec")
}

history_entry() { # history_entry CREATED_BY [empty]
	if [[ ${2:-} == empty ]]; then
		jq -cn --arg c "$1" '{created_by: $c, empty_layer: true}'
	else
		jq -cn --arg c "$1" '{created_by: $c, comment: "berth-ci fixture"}'
	fi
}

# ---------------------------------------------------------------------------- busybox
busybox_tree() { # busybox_tree DIR [PLATFORM_MARKER [BUSYBOX_BINARY]]
	local root=$1 p
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home,var/spool/mail,dev,proc,sys}
	cp "${3:-$BUSYBOX_BIN}" "$root/bin/busybox"
	chmod 755 "$root/bin/busybox"
	# What `busybox --install -s` does in the image, without running the binary in a chroot
	# (it would link to /proc/self/exe when /proc is absent).
	"$BUSYBOX_BIN" --list-full | python3 -c '
import os, sys
for p in sys.stdin.read().split():
    if p != "bin/busybox":
        os.symlink("/bin/busybox", os.path.join(sys.argv[1], p))' "$root"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$root/etc/group"
	printf '%s\n' 'root:*::0:::::' 'nobody:*::0:::::' >"$root/etc/shadow"
	chmod 640 "$root/etc/shadow"
	chmod 700 "$root/root"
	chmod 1777 "$root/tmp"
	if [[ -n ${2:-} ]]; then
		echo "$2" >"$root/etc/berth-fixture-platform"
	fi
}

build_busybox() {
	step_start busybox
	local tree=$WORK/busybox bb_cfg bb_hist p key c
	if ! { layer_cached "busybox-$RECIPE" gzip && layer_cached "busybox-$RECIPE" zstd &&
		layer_cached "busybox-$RECIPE" none; }; then
		safe_rm "$tree"
		busybox_tree "$tree/rootfs"
		tar_tree "$tree/rootfs" "$tree/layer.tar" synthetic
		for c in gzip zstd none; do layer_from_tar "busybox-$RECIPE" "$tree/layer.tar" $c; done
		safe_rm "$tree"
	fi
	local l_gz=$REC/layer-busybox-$RECIPE-gzip.json l_zst=$REC/layer-busybox-$RECIPE-zstd.json
	local l_raw=$REC/layer-busybox-$RECIPE-none.json
	bb_cfg=$(jq -cn --arg path "$PATH_ENV" '{Env: [$path], Cmd: ["sh"]}')
	bb_hist=$(jq -cs . <(history_entry "/bin/sh -c #(nop) ADD file:busybox-static in / ") \
		<(history_entry '/bin/sh -c #(nop)  CMD ["sh"]' empty))
	image busybox-docker docker linux/amd64 "$bb_cfg" "$bb_hist" "$l_gz"
	image busybox-oci oci linux/amd64 "$bb_cfg" "$bb_hist" "$l_gz"
	image busybox-zstd oci linux/amd64 "$bb_cfg" "$bb_hist" "$l_zst"
	image busybox-uncompressed oci linux/amd64 "$bb_cfg" "$bb_hist" "$l_raw"
	BUSYBOX_LAYER=$l_gz

	# Multi-platform: one image per platform, all with the amd64 binary but the right
	# config platform, plus /etc/berth-fixture-platform naming the platform so a test can
	# tell which one was unpacked.
	local oci_imgs=() docker_imgs=()
	for p in linux/amd64 linux/arm64/v8 linux/arm/v7; do
		key=busybox-multi-${p//\//-}
		if ! layer_cached "$key-$RECIPE" gzip; then
			safe_rm "$tree/$key"
			busybox_tree "$tree/$key" "$p"
			tar_tree "$tree/$key" "$tree/$key.tar" synthetic
			layer_from_tar "$key-$RECIPE" "$tree/$key.tar" gzip
		fi
		image "$key-oci" oci "$p" "$bb_cfg" "$bb_hist" "$LAYER"
		oci_imgs+=("$IMAGE")
		image "$key-docker" docker "$p" "$bb_cfg" "$bb_hist" "$LAYER"
		docker_imgs+=("$IMAGE")
	done
	index busybox-multi-index oci "${oci_imgs[@]}"
	index busybox-multi-list docker "${docker_imgs[@]}"
	safe_rm "$tree"

	tag library/busybox:latest busybox-docker
	tag library/busybox:1.36 busybox-docker
	tag library/busybox:oci busybox-oci
	tag library/busybox-multi:latest busybox-multi-index
	tag library/busybox-multi:list busybox-multi-list
	tag library/busybox-zstd:latest busybox-zstd
	build_busybox_qemu "$bb_cfg" "$bb_hist"
	tag library/busybox-uncompressed:latest busybox-uncompressed
	step_end
}

# An arm64 busybox-static binary (Debian's package), downloaded once into the cache: the
# arm64 image of library/busybox-qemu runs only under emulation (qemu-user-static).
arm64_busybox() {
	local dir=$BERTH_CI_CACHE/busybox-arm64 deb
	ARM64_BUSYBOX=$dir/bin/busybox
	[[ -x $ARM64_BUSYBOX ]] && return 0
	mkdir -p "$dir"
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		dpkg --add-architecture arm64
		apt-get update -q >/dev/null
	fi
	(cd "$dir" && rm -f busybox-static_*_arm64.deb && apt-get download -q busybox-static:arm64 >/dev/null) ||
		{ apt-get update -q >/dev/null && (cd "$dir" && apt-get download -q busybox-static:arm64 >/dev/null); }
	deb=$(ls "$dir"/busybox-static_*_arm64.deb)
	dpkg-deb -x "$deb" "$dir/x"
	mkdir -p "$dir/bin"
	cp "$dir/x/bin/busybox" "$ARM64_BUSYBOX.tmp" && mv -f "$ARM64_BUSYBOX.tmp" "$ARM64_BUSYBOX"
	rm -rf "$dir/x" "$deb"
}

# library/busybox-qemu: an OCI index of a real linux/amd64 and a real linux/arm64 busybox, each
# with /etc/berth-fixture-platform (for emulated runs and multi-platform builds).
build_busybox_qemu() {
	local bb_cfg=$1 bb_hist=$2 tree=$WORK/busybox-qemu imgs=() key p bin
	arm64_busybox
	for p in linux/amd64 linux/arm64; do
		key=busybox-qemu-${p//\//-}
		bin=$BUSYBOX_BIN
		[[ $p == linux/arm64 ]] && bin=$ARM64_BUSYBOX
		if ! layer_cached "$key-$RECIPE-$(sha256sum "$bin" | cut -c1-12)" gzip; then
			safe_rm "$tree/$key"
			busybox_tree "$tree/$key" "$p" "$bin"
			tar_tree "$tree/$key" "$tree/$key.tar" synthetic
			layer_from_tar "$key-$RECIPE-$(sha256sum "$bin" | cut -c1-12)" "$tree/$key.tar" gzip
		fi
		image "$key" oci "$p" "$bb_cfg" "$bb_hist" "$LAYER"
		imgs+=("$IMAGE")
	done
	index busybox-qemu-index oci "${imgs[@]}"
	safe_rm "$tree"
	tag library/busybox-qemu:latest busybox-qemu-index
}

nginx_standin_tree() { # nginx_standin_tree DIR
	local root=$1
	mkdir -p "$root/usr/share/nginx/html" "$root/etc/nginx/conf.d" "$root/var/log/nginx"
	cat >"$root/usr/share/nginx/html/index.html" <<'EOF'
<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>berth CI stand-in: busybox httpd serving /usr/share/nginx/html on port 80.</p>
</body>
</html>
EOF
	echo '# berth CI stand-in: the server is busybox httpd, this file is not read' >"$root/etc/nginx/nginx.conf"
}

# Stand-ins that are busybox plus (at most) a small layer.
build_busybox_standins() {
	step_start busybox-standins
	local tree=$WORK/nginx cfg hist
	if ! layer_cached "nginx-standin-$RECIPE" gzip; then
		safe_rm "$tree" "$tree.tar"
		nginx_standin_tree "$tree"
		tar_tree "$tree" "$tree.tar" synthetic
		layer_from_tar "nginx-standin-$RECIPE" "$tree.tar" gzip
		safe_rm "$tree" "$tree.tar"
	fi
	cfg=$(jq -cn --arg path "$PATH_ENV" '{Env: [$path, "NGINX_VERSION=1.21.6"],
		Cmd: ["httpd", "-f", "-v", "-p", "80", "-h", "/usr/share/nginx/html"],
		ExposedPorts: {"80/tcp": {}}, StopSignal: "SIGQUIT"}')
	hist=$(jq -cs . <(history_entry "/bin/sh -c #(nop) ADD file:busybox-static in / ") \
		<(history_entry "/bin/sh -c #(nop) COPY dir:nginx-standin in / ") \
		<(history_entry '/bin/sh -c #(nop)  EXPOSE 80' empty) \
		<(history_entry '/bin/sh -c #(nop)  CMD ["httpd" "-f" "-v" "-p" "80" "-h" "/usr/share/nginx/html"]' empty))
	image nginx-standin docker linux/amd64 "$cfg" "$hist" "$BUSYBOX_LAYER" "$LAYER"
	tag library/nginx:1.21 nginx-standin
	tag library/nginx:latest nginx-standin
	tag bitnami/nginx:latest nginx-standin
	tag google-containers/nginx:latest nginx-standin
	tag library/redis:7-alpine busybox-docker
	tag grafana/grafana:latest busybox-docker
	step_end
}

# ---------------------------------------------------------------------------- big
# 8 layers of exactly 64 MiB of file data each: 32 MiB from an AES-CTR keystream (fixed
# key, per-layer IV) in 4 files, 28 MiB of compressible text in 4 files, 256 small text
# files of 16 KiB, plus a symlink, a hardlink, a whiteout of a file of the layer below and
# an opaque directory.
big_layer_tree() {
	local i=$1 root=$2 d f iv
	d=$root/data/layer$i
	mkdir -p "$d/random" "$d/text" "$d/small"
	for f in 0 1 2 3; do
		iv=$(printf '%016x%016x' "$i" "$f")
		head -c $((8 << 20)) /dev/zero |
			openssl enc -aes-128-ctr -nosalt -K 62657274682063692066697874757265 -iv "$iv" >"$d/random/rand-$f.bin"
	done
	local specs=()
	for f in 0 1 2 3; do specs+=("text/text-$f.txt=$((7 << 20))"); done
	for f in $(seq -w 0 255); do specs+=("small/f$f.txt=16384"); done
	python3 "$SRC/gen-text.py" "big-$i" "$d" "${specs[@]}"
	ln -s random/rand-0.bin "$d/latest.bin"
	ln "$d/text/text-0.txt" "$d/text/text-0.hardlink"
	mkdir -p "$root/data/shared"
	if ((i == 1)); then
		echo "layer 1" >"$root/data/shared/a.txt"
		echo "layer 1" >"$root/data/shared/b.txt"
	else
		# Hide everything lower layers put in /data/shared, and one file of the layer below.
		: >"$root/data/shared/.wh..wh..opq"
		echo "layer $i" >"$root/data/shared/from-layer-$i.txt"
		mkdir -p "$root/data/layer$((i - 1))/text"
		: >"$root/data/layer$((i - 1))/text/.wh.text-3.txt"
	fi
}

build_big() {
	step_start big
	local layers=("$BUSYBOX_LAYER") i tree hist cfg
	hist=$(history_entry "/bin/sh -c #(nop) ADD file:busybox-static in / ")
	for i in 1 2 3 4 5 6 7 8; do
		if ! layer_cached "$BIG_KEY-$i" gzip; then
			tree=$WORK/big-$i
			safe_rm "$tree" "$tree.tar"
			big_layer_tree "$i" "$tree"
			tar_tree "$tree" "$tree.tar" synthetic
			layer_from_tar "$BIG_KEY-$i" "$tree.tar" gzip
			safe_rm "$tree" "$tree.tar"
		fi
		layers+=("$LAYER")
		hist+=" $(history_entry "/bin/sh -c #(nop) COPY dir:big-layer-$i in /data/ ")"
	done
	hist=$(jq -cs . <<<"$hist $(history_entry '/bin/sh -c #(nop)  CMD ["sh"]' empty)")
	cfg=$(jq -cn --arg path "$PATH_ENV" '{Env: [$path], Cmd: ["sh"]}')
	image big-docker docker linux/amd64 "$cfg" "$hist" "${layers[@]}"
	image big-oci oci linux/amd64 "$cfg" "$hist" "${layers[@]}"
	tag library/big:latest big-docker
	tag library/big:oci big-oci
	step_end
}

# ---------------------------------------------------------------------------- debian
# short_id FILE: first 12 hex digits of FILE's sha256, remembered in FILE.sha256 (the
# cached tars are large and never change once written).
short_id() {
	if [[ ! -s $1.sha256 || $1.sha256 -ot $1 ]]; then
		sha256sum "$1" | cut -c1-64 >"$1.sha256"
	fi
	cut -c1-12 "$1.sha256"
}

debian_rootfs_tar() {
	DEBIAN_TAR=$BERTH_CI_CACHE/$DEBIAN_KEY.tar
	[[ -s $DEBIAN_TAR ]] && return 0
	step_start debootstrap
	local root=$WORK/debian-rootfs
	safe_rm "$root"
	mkdir -p "$root"
	ci_log "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (a few minutes; log $WORK/debootstrap.log)"
	# A private mount namespace: whatever debootstrap mounts (proc, sys) vanishes with it.
	if ! unshare --mount --propagation private \
		debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1; then
		tail -n 30 "$WORK/debootstrap.log" >&2
		ci_die "debootstrap failed; log: $WORK/debootstrap.log"
	fi
	# Clean up the way the official image does.
	assert_no_mounts "$root"
	rm -rf "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/*.bin "${root:?}"/var/cache/apt/archives/*.deb \
		"${root:?}"/var/cache/apt/archives/partial/* "${root:?}"/var/cache/debconf/*-old "${root:?}"/var/lib/dpkg/*-old \
		"${root:?}"/dev/* "${root:?}"/proc/* "${root:?}"/sys/* "${root:?}"/tmp/* "${root:?}"/var/tmp/* \
		"${root:?}"/etc/machine-id "${root:?}"/var/lib/dbus/machine-id "${root:?}"/etc/hostname \
		"${root:?}"/debootstrap "${root:?}"/etc/apt/sources.list
	find "$root/var/log" -type f -delete
	: >"$root/etc/resolv.conf"
	mkdir -p "$root/var/lib/apt/lists/partial"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
	# This machine reaches PyPI and npm through an egress proxy with its own CA. Images built
	# here stand in for the official ones on *this* network, so they trust the same extra CAs
	# the host trusts (ca-certificates, once installed in a layer, adds them to the bundle).
	mkdir -p "$root/usr/local/share/ca-certificates"
	for c in /usr/local/share/ca-certificates/*.crt; do
		[[ -f $c ]] && cp "$c" "$root/usr/local/share/ca-certificates/"
	done
	echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
	echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
	tar_tree "$root" "$DEBIAN_TAR.tmp"
	mv -f "$DEBIAN_TAR.tmp" "$DEBIAN_TAR"
	safe_rm "$root"
	step_end
}

# chroot_layer KEY BASE_TAR SCRIPT: the layer SCRIPT adds on top of BASE_TAR, computed with
# overlayfs (upper dir = the layer; its whiteouts turned into .wh. files). The layer tar is
# cached as $BERTH_CI_CACHE/KEY-<base digest>.tar; sets CHROOT_TAR.
chroot_layer() {
	local key=$1 base=$2 script=$3 w base_id
	base_id=$(short_id "$base")
	CHROOT_TAR=$BERTH_CI_CACHE/$key-$base_id.tar
	[[ -s $CHROOT_TAR ]] && return 0
	step_start "$key (apt-get in chroot)"
	w=$WORK/$key
	safe_rm "$w"
	mkdir -p "$w/lower" "$w/upper" "$w/work" "$w/merged"
	tar -xpf "$base" --numeric-owner -C "$w/lower"
	# shellcheck disable=SC2016 # the inner script expands its own positional parameters
	if ! unshare --mount --propagation private bash -euo pipefail -c '
		w=$1 src=$2 script=$3
		mount -t overlay overlay -o "lowerdir=$w/lower,upperdir=$w/upper,workdir=$w/work" "$w/merged"
		# Minimal /dev and /proc on mounts of their own, so nothing of them lands in upper.
		mount -t tmpfs -o mode=755,nosuid tmpfs "$w/merged/dev"
		mknod -m 666 "$w/merged/dev/null" c 1 3; mknod -m 666 "$w/merged/dev/zero" c 1 5
		mknod -m 666 "$w/merged/dev/full" c 1 7; mknod -m 666 "$w/merged/dev/random" c 1 8
		mknod -m 666 "$w/merged/dev/urandom" c 1 9; mknod -m 666 "$w/merged/dev/tty" c 5 0
		ln -s /proc/self/fd "$w/merged/dev/fd"
		mount -t proc proc "$w/merged/proc"
		mount --bind /etc/resolv.conf "$w/merged/etc/resolv.conf"
		mount -t tmpfs tmpfs "$w/merged/tmp"
		cp -a "$src/alpine-compat/." "$w/merged/"
		chroot "$w/merged" /usr/bin/env -i HOME=/root TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			DEBIAN_FRONTEND=noninteractive /bin/bash -euo pipefail -c "$script"
	' chroot-layer "$w" "$SRC" "$script" >"$w.log" 2>&1; then
		tail -n 30 "$w.log" >&2
		ci_die "$key: chroot step failed; log: $w.log"
	fi
	# overlayfs whiteouts (0:0 char devices) and opaque dirs (trusted.overlay.opaque=y)
	# become OCI .wh. entries.
	python3 - "$w/upper" <<'EOF'
import os, sys
for dirpath, dirnames, filenames in os.walk(sys.argv[1]):
    try:
        if os.getxattr(dirpath, "trusted.overlay.opaque") == b"y":
            open(os.path.join(dirpath, ".wh..wh..opq"), "w").close()
            os.removexattr(dirpath, "trusted.overlay.opaque")
    except OSError:
        pass
    for name in filenames + dirnames:
        p = os.path.join(dirpath, name)
        st = os.lstat(p)
        if (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0:
            os.unlink(p)
            open(os.path.join(dirpath, ".wh." + name), "w").close()
EOF
	tar_tree "$w/upper" "$CHROOT_TAR.tmp"
	mv -f "$CHROOT_TAR.tmp" "$CHROOT_TAR"
	safe_rm "$w"
	step_end
}

APT_CLEAN='apt-get clean
find /var/lib/apt/lists -mindepth 1 -maxdepth 1 ! -name partial -exec rm -rf {} +
rm -rf /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /root/.cache /root/.npm'

build_debian() {
	debian_rootfs_tar
	step_start debian
	layer_from_tar "$DEBIAN_KEY-$(short_id "$DEBIAN_TAR")" "$DEBIAN_TAR" gzip
	DEBIAN_LAYER=$LAYER
	local cfg hist
	cfg=$(jq -cn --arg path "$PATH_ENV" '{Env: [$path], Cmd: ["bash"]}')
	hist=$(jq -cs . <(history_entry "/bin/sh -c #(nop) ADD file:debootstrap-minbase-bookworm in / ") \
		<(history_entry '/bin/sh -c #(nop)  CMD ["bash"]' empty))
	image debian docker linux/amd64 "$cfg" "$hist" "$DEBIAN_LAYER"
	for t in library/debian:bookworm library/debian:bookworm-slim library/debian:12 library/debian:latest \
		library/mysql:8.0 jenkins/jenkins:latest ubi8/ubi:latest; do
		tag "$t" debian
	done
	# ubuntu:20.04 lets pip3 install system-wide (no PEP 668 marker there); bookworm's pip
	# refuses, so the stand-in says so in its config: the same layer, its own config.
	cfg=$(jq -cn --arg path "$PATH_ENV" '{Env: [$path, "PIP_BREAK_SYSTEM_PACKAGES=1"], Cmd: ["bash"]}')
	hist=$(jq -cs . <(history_entry "/bin/sh -c #(nop) ADD file:debootstrap-minbase-bookworm in / ") \
		<(history_entry '/bin/sh -c #(nop)  ENV PIP_BREAK_SYSTEM_PACKAGES=1' empty) \
		<(history_entry '/bin/sh -c #(nop)  CMD ["bash"]' empty))
	image ubuntu docker linux/amd64 "$cfg" "$hist" "$DEBIAN_LAYER"
	tag library/ubuntu:20.04 ubuntu
	tag library/ubuntu:latest ubuntu
	step_end
}

build_python() {
	local script cfg hist
	script="apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv ca-certificates >/dev/null
ln -sf /usr/bin/python3 /usr/local/bin/python
ln -sf /usr/bin/pip3 /usr/local/bin/pip
python --version; pip --version
$APT_CLEAN"
	chroot_layer "$PYTHON_KEY" "$DEBIAN_TAR" "$script"
	step_start python
	layer_from_tar "$PYTHON_KEY-$(short_id "$CHROOT_TAR")" "$CHROOT_TAR" gzip
	cfg=$(jq -cn --arg path "$PATH_ENV" '{Env: [$path, "LANG=C.UTF-8", "PIP_BREAK_SYSTEM_PACKAGES=1"], Cmd: ["python3"]}')
	hist=$(jq -cs . <(history_entry "/bin/sh -c #(nop) ADD file:debootstrap-minbase-bookworm in / ") \
		<(history_entry "/bin/sh -c apt-get install -y python3 python3-pip python3-venv && ln -s python3 python && ln -s pip3 pip") \
		<(history_entry '/bin/sh -c #(nop)  ENV PIP_BREAK_SYSTEM_PACKAGES=1' empty) \
		<(history_entry '/bin/sh -c #(nop)  CMD ["python3"]' empty))
	image python docker linux/amd64 "$cfg" "$hist" "$DEBIAN_LAYER" "$LAYER"
	for t in library/python:3.9-slim library/python:3.9 library/python:3.9-alpine library/python:3-slim \
		library/python:latest; do
		tag "$t" python
	done
	step_end
}

build_node() {
	local script cfg hist
	script="apt-get update -qq
apt-get install -y -qq --no-install-recommends nodejs npm ca-certificates >/dev/null
groupadd --gid 1000 node
useradd --uid 1000 --gid node --shell /bin/bash --create-home node
node --version; npm --version
$APT_CLEAN"
	chroot_layer "$NODE_KEY" "$DEBIAN_TAR" "$script"
	step_start node
	layer_from_tar "$NODE_KEY-$(short_id "$CHROOT_TAR")" "$CHROOT_TAR" gzip
	cfg=$(jq -cn --arg path "$PATH_ENV" '{Env: [$path], Cmd: ["node"]}')
	hist=$(jq -cs . <(history_entry "/bin/sh -c #(nop) ADD file:debootstrap-minbase-bookworm in / ") \
		<(history_entry "/bin/sh -c apt-get install -y nodejs npm && useradd --uid 1000 node") \
		<(history_entry '/bin/sh -c #(nop)  CMD ["node"]' empty))
	image node docker linux/amd64 "$cfg" "$hist" "$DEBIAN_LAYER" "$LAYER"
	for t in library/node:16-alpine library/node:18-alpine library/node:16 library/node:16.14.2-alpine \
		library/node:18 library/node:lts-alpine; do
		tag "$t" node
	done
	step_end
}

# ---------------------------------------------------------------------------- push
registry_digest() { # registry_digest REPO TAG: the digest the registry serves, or empty
	curl -sf -o /dev/null -D - -I -H "Accept: $ACCEPT" "http://$REGISTRY/v2/$1/manifests/$2" 2>/dev/null |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

# push_tag REPO:TAG RECORD: push with skopeo from a dir: transport view of the layout
# (skopeo 1.9's oci: transport skips Docker-typed manifests, dir: carries any type).
push_tag() {
	local ref=$1 rec=$2 repo tag digest mt dir m b
	repo=${ref%:*} tag=${ref##*:}
	digest=$(jq -r .digest "$rec") mt=$(jq -r .mediaType "$rec")
	if [[ $(registry_digest "$repo" "$tag") == "$digest" ]]; then
		return 0
	fi
	dir=$WORK/push-${digest#sha256:}
	if [[ ! -e $dir/manifest.json ]]; then
		safe_rm "$dir"
		mkdir -p "$dir"
		printf 'Directory Transport Version: 1.1\n' >"$dir/version"
		ln "$OCI/blobs/sha256/${digest#sha256:}" "$dir/manifest.json"
		local manifests=("${digest#sha256:}")
		if [[ $mt == "$MT_OCI_INDEX" || $mt == "$MT_DOCKER_LIST" ]]; then
			for m in $(jq -r '.manifests[].digest[7:]' "$OCI/blobs/sha256/${digest#sha256:}"); do
				ln -f "$OCI/blobs/sha256/$m" "$dir/$m.manifest.json"
				manifests+=("$m")
			done
		fi
		for m in "${manifests[@]}"; do
			for b in $(jq -r '(.config.digest // empty), (.layers[]?.digest) | .[7:]' "$OCI/blobs/sha256/$m"); do
				[[ -e $dir/$b ]] || ln "$OCI/blobs/sha256/$b" "$dir/$b"
			done
		done
	fi
	skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false \
		"dir:$dir" "docker://$REGISTRY/$repo:$tag" ||
		ci_die "skopeo copy to $REGISTRY/$repo:$tag failed"
	[[ $(registry_digest "$repo" "$tag") == "$digest" ]] ||
		ci_die "$REGISTRY/$repo:$tag does not serve $digest after the push"
	PUSHED=$((PUSHED + 1))
}

write_outputs() {
	local ref rec
	# The layout's index.json names every tag built by this run or an earlier one (a basic
	# run after an all run keeps the Debian entries while their blobs exist); fixtures.tsv
	# lists the same tags: ref, digest, media type, bytes of manifest + config + layers
	# (deduplicated, all platforms for an index).
	printf '%s\n' "${TAGS[@]}" | while read -r ref rec; do
		jq -c --arg ref "$ref" '{mediaType, digest, size,
			annotations: {"org.opencontainers.image.ref.name": $ref}}
			+ (if .platform then {platform} else {} end)' "$rec"
	done >"$WORK/new-index-entries.json"
	python3 - "$OCI" "$WORK/new-index-entries.json" "$FIX/fixtures.tsv" <<'PY'
import json, os, sys
oci, new_path, tsv = sys.argv[1:4]
blobs = os.path.join(oci, "blobs", "sha256")
REF = "org.opencontainers.image.ref.name"
new = [json.loads(l) for l in open(new_path) if l.strip()]
try:
    old = json.load(open(os.path.join(oci, "index.json")))["manifests"]
except (OSError, ValueError, KeyError):
    old = []
def walk(digest, seen):
    p = os.path.join(blobs, digest[7:])
    seen[digest] = os.path.getsize(p)
    doc = json.load(open(p))
    for m in doc.get("manifests", []):
        walk(m["digest"], seen)
    for b in ([doc["config"]] if "config" in doc else []) + doc.get("layers", []):
        if not os.path.exists(os.path.join(blobs, b["digest"][7:])):
            raise FileNotFoundError(b["digest"])
        seen[b["digest"]] = b["size"]
    return seen
refs = {m["annotations"][REF] for m in new}
merged, lines = [], []
for m in [m for m in old if m.get("annotations", {}).get(REF) not in refs] + new:
    try:
        size = sum(walk(m["digest"], {}).values())
    except (OSError, ValueError):
        continue  # an old entry whose blobs are gone
    merged.append(m)
    lines.append(f'{m["annotations"][REF]}\t{m["digest"]}\t{m["mediaType"]}\t{size}\n')
doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": merged}
with open(os.path.join(oci, "index.json.tmp"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
os.replace(os.path.join(oci, "index.json.tmp"), os.path.join(oci, "index.json"))
with open(tsv + ".tmp", "w") as f:
    f.writelines(lines)
os.replace(tsv + ".tmp", tsv)
PY
	rm -f "$WORK/new-index-entries.json"
}

# all_current FILE: true when every "ref digest" line (after the first) is what the
# registry serves.
all_current() {
	local ref digest
	while read -r ref digest; do
		[[ -e $OCI/blobs/sha256/${digest#sha256:} ]] || return 1
		[[ $(registry_digest "${ref%:*}" "${ref##*:}") == "$digest" ]] || return 1
	done < <(tail -n +2 "$1")
}

# ---------------------------------------------------------------------------- main
T_ALL=$(now_ms)
if [[ $REGISTRY == "localhost:$BERTH_PORT_PLAIN" || $REGISTRY == "127.0.0.1:$BERTH_PORT_PLAIN" ]]; then
	"$BERTH_CI_SCRIPTS/registry.sh" start plain 2>&1 | grep -v 'already running' >&2 || true
fi
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/") == 200 ]] ||
	ci_die "registry $REGISTRY does not answer /v2/ over plain HTTP without auth"

# Fast path: same recipes, same registry, and the registry still serves every digest.
DONE=$FIX/done-$MODE
STAMP="$RECIPE $REGISTRY $BIG_KEY $DEBIAN_KEY $PYTHON_KEY $NODE_KEY"
if [[ -s $DONE && $(head -n1 "$DONE") == "$STAMP" ]] && all_current "$DONE"; then
	ci_log "fixtures ($MODE) up to date: $(($(wc -l <"$DONE") - 1)) tags on $REGISTRY ($(secs_since "$T_ALL")s)"
	exit 0
fi
rm -f "$DONE"

build_busybox
build_busybox_standins
build_big
if [[ $MODE == all ]]; then
	build_debian
	build_python
	build_node
fi

step_start push
PUSHED=0
for entry in "${TAGS[@]}"; do
	read -r ref rec <<<"$entry"
	push_tag "$ref" "$rec"
done
step_end
write_outputs
printf '%s\n' "${TIMES[@]}" >"$FIX/build-times.tsv"
{
	echo "$STAMP"
	for entry in "${TAGS[@]}"; do
		read -r ref rec <<<"$entry"
		echo "$ref $(jq -r .digest "$rec")"
	done
} >"$DONE"
safe_rm "$WORK"/push-*
ci_log "fixtures ($MODE): ${#TAGS[@]} tags on $REGISTRY, $PUSHED pushed, $(secs_since "$T_ALL")s total; list: $FIX/fixtures.tsv"
