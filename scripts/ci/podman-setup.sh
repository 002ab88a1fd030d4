#!/usr/bin/env bash
# Configure podman, buildah and skopeo (containers/common) for this machine and the local
# test registries. Writes only under /etc/containers, as drop-ins named berth-ci:
#   /etc/containers/containers.conf.d/50-berth-ci.conf
#       runtime = runc (crun 1.8 refuses hybrid cgroups), cgroup_manager = cgroupfs,
#       events_logger = file (no journald), default_ulimits clamped to the hard limits here
#       (nofile 20000, nproc 32768) so setrlimit does not fail with EPERM
#   /etc/containers/registries.conf.d/50-berth-ci.conf
#       unqualified-search-registries = [] (a short name never reaches Docker Hub);
#       localhost / 127.0.0.1 ports 5000 (plain), 5001 (htpasswd), 5003 (token) insecure;
#       5002 (tls) and 5004 (tls-mtls) verified with our CA
#   /etc/containers/certs.d/{localhost,127.0.0.1}:{5002,5004} -> symlinks into
#       $BERTH_CI_STATE/certs.d, so a regenerated CA is picked up without rerunning this
#   /etc/containers/policy.json, only when it is missing (insecureAcceptAnything)
# Idempotent; rerunning rewrites the same files. `--remove` deletes them again.
#
# Usage: scripts/ci/podman-setup.sh [--remove] [--check]
#   --check  also pull busybox from the plain registry and run it with podman, and run
#            buildah and skopeo against it (needs registry.sh start plain and fixtures.sh).
set -euo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ETC=${BERTH_CONTAINERS_ETC:-/etc/containers}
CONF_D=$ETC/containers.conf.d
REG_D=$ETC/registries.conf.d
CERTS=$ETC/certs.d
NAME=50-berth-ci.conf

remove() {
	rm -f "$CONF_D/$NAME" "$REG_D/$NAME"
	local hp
	for hp in "localhost:$BERTH_PORT_TLS" "127.0.0.1:$BERTH_PORT_TLS" \
		"localhost:$BERTH_PORT_MTLS" "127.0.0.1:$BERTH_PORT_MTLS"; do
		[[ -L $CERTS/$hp ]] && rm -f "$CERTS/$hp"
	done
	ci_log "removed berth-ci drop-ins from $ETC"
}

setup() {
	mkdir -p "$CONF_D" "$REG_D" "$CERTS"
	cat >"$CONF_D/$NAME.tmp" <<'EOF'
# written by berth scripts/ci/podman-setup.sh
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
	mv -f "$CONF_D/$NAME.tmp" "$CONF_D/$NAME"

	{
		echo '# written by berth scripts/ci/podman-setup.sh'
		echo 'unqualified-search-registries = []'
		local host port
		for port in "$BERTH_PORT_PLAIN" "$BERTH_PORT_HTPASSWD" "$BERTH_PORT_TOKEN"; do
			for host in localhost 127.0.0.1; do
				printf '\n[[registry]]\nlocation = "%s:%s"\ninsecure = true\n' "$host" "$port"
			done
		done
		for port in "$BERTH_PORT_TLS" "$BERTH_PORT_MTLS"; do
			for host in localhost 127.0.0.1; do
				printf '\n[[registry]]\nlocation = "%s:%s"\ninsecure = false\n' "$host" "$port"
			done
		done
	} >"$REG_D/$NAME.tmp"
	mv -f "$REG_D/$NAME.tmp" "$REG_D/$NAME"

	# Make sure the CA exists, then point certs.d at the state dir.
	"$BERTH_CI_SCRIPTS/registry.sh" pki
	local hp
	for hp in "localhost:$BERTH_PORT_TLS" "127.0.0.1:$BERTH_PORT_TLS" \
		"localhost:$BERTH_PORT_MTLS" "127.0.0.1:$BERTH_PORT_MTLS"; do
		if [[ -e $CERTS/$hp && ! -L $CERTS/$hp ]]; then
			ci_die "$CERTS/$hp exists and is not our symlink; move it away first"
		fi
		ln -sfn "$BERTH_CI_STATE/certs.d/$hp" "$CERTS/$hp"
	done

	if [[ ! -e $ETC/policy.json ]]; then
		printf '{\n    "default": [{"type": "insecureAcceptAnything"}]\n}\n' >"$ETC/policy.json"
	fi
	ci_log "podman/buildah/skopeo configured (drop-ins in $CONF_D and $REG_D, certs in $CERTS)"
}

check() {
	local reg=localhost:$BERTH_PORT_PLAIN out
	command -v podman >/dev/null || ci_die "podman not installed; run scripts/ci/install-deps.sh"
	[[ $(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}') == "runc cgroupfs" ]] ||
		ci_die "podman does not use runc + cgroupfs: $(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}')"
	podman pull -q "$reg/library/busybox:latest" >/dev/null
	out=$(podman run --rm --network none "$reg/library/busybox:latest" sh -c 'echo ok; ulimit -n')
	[[ $out == $'ok\n20000' ]] || ci_die "podman run printed '$out', expected ok and 20000"
	ci_log "podman: pulled and ran $reg/library/busybox:latest"
	local ctr
	ctr=$(buildah from -q "$reg/library/busybox:latest")
	buildah run --network none "$ctr" -- true
	buildah rm "$ctr" >/dev/null
	ci_log "buildah: from + run ok"
	skopeo inspect "docker://localhost:$BERTH_PORT_TLS/library/busybox:latest" >/dev/null 2>&1 ||
		skopeo copy -q "docker://$reg/library/busybox:latest" \
			"docker://localhost:$BERTH_PORT_TLS/library/busybox:latest"
	skopeo inspect "docker://localhost:$BERTH_PORT_TLS/library/busybox:latest" >/dev/null
	ci_log "skopeo: TLS registry verified through $CERTS"
}

case ${1:-} in
--remove) remove ;;
--check) setup && check ;;
'') setup ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
