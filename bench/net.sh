#!/usr/bin/env bash
# Container networking: (1) `run --rm busybox true` with the default private network
# (issue 13's target: ≤ 60 ms median) against host networking and podman's default
# (rootful: netavark bridge), (2) a bulk transfer through a published port on loopback
# (target ≥ 1 GB/s): 2 GiB from `busybox nc` in the container to a client on the host.
# Ports 17390-17391.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_need_fixtures basic && bench_need_podman && bench_need_berth
img=$BERTH_REGISTRY_PLAIN/library/busybox:latest
root=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
trap '"$BERTH" --root "$root" rm -f bnet >/dev/null 2>&1 || true; podman rm -f pnet >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
"$BERTH" --root "$root" pull -q "$img" >/dev/null
podman pull -q "$img" >/dev/null

bench --name net-run-true --runs "${RUNS:-20}" --warmup 2 --baseline podman \
	--tool berth-bridge="$BERTH --root $root run --rm $img true" \
	--tool berth-host="$BERTH --root $root run --rm --network host $img true" \
	--tool podman="podman run --rm $img true" \
	--version-for berth-bridge="$BERTH --version" --version-for podman='podman --version' \
	--note "alternated; the image is local; berth's berth netns and slirp4netns are up after the warm-up"

# Throughput: the container writes 2 GiB of zeros to whoever connects to its port 5000;
# the host reads it through the published port and discards it.
size=$((2 * 1024 * 1024 * 1024))
serve='while true; do head -c '$size' /dev/zero | nc -l -p 5000; done'
"$BERTH" --root "$root" run -d --name bnet -p 127.0.0.1:17390:5000 "$img" sh -c "$serve" >/dev/null
podman run -d --name pnet -p 127.0.0.1:17391:5000 "$img" sh -c "$serve" >/dev/null
sleep 1
read_port='python3 -c "import socket,sys
s=socket.create_connection((\"127.0.0.1\",int(sys.argv[1])))
n=0
while True:
    b=s.recv(1<<20)
    if not b: break
    n+=len(b)
assert n=='$size', n" '
bench --name net-throughput-2GiB --runs "${RUNS_TP:-5}" --warmup 1 --baseline podman \
	--tool berth="$read_port 17390" \
	--tool podman="$read_port 17391" \
	--note "2 GiB through -p 127.0.0.1:PORT:5000 from busybox nc in the container; GB/s = 2.147 / median s"
