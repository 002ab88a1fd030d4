#!/usr/bin/env bash
# Run a private Docker 20.10 daemon for differential tests and benchmarks, by hand (no
# systemd), with everything under $BERTH_CI_STATE/docker:
#   daemon.json  data/ (data-root)  exec/ (exec-root, its containerd)  docker.sock
#   dockerd.pid  dockerd.log  client/ (DOCKER_CONFIG for the CLI: logins stay here)
# Networking is off (iptables false, ip-masq false, bridge none): use `--network none` or
# `--network host` with run and build. Storage is overlay2. The loopback registry ports
# are insecure registries (docker cannot read our CA: it only looks in /etc/docker/certs.d).
# If a system containerd is running, dockerd uses it under its own namespace "berth-ci";
# otherwise it supervises a containerd of its own under exec/.
#
# Usage:
#   scripts/ci/dockerd.sh start     idempotent; waits until the API answers
#   scripts/ci/dockerd.sh stop
#   scripts/ci/dockerd.sh status
#   scripts/ci/dockerd.sh env       eval "$(scripts/ci/dockerd.sh env)" exports
#                                   DOCKER_HOST, DOCKER_CONFIG and BERTH_DOCKER (the 20.10
#                                   CLI, /usr/bin/docker; another docker may be first in PATH)
#   scripts/ci/dockerd.sh check     start, then pull and run busybox from the plain registry
set -euo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$BERTH_CI_STATE/docker
SOCK=$DIR/docker.sock
PIDFILE=$DIR/dockerd.pid
DOCKERD=${BERTH_DOCKERD:-/usr/sbin/dockerd}
DOCKER=${BERTH_DOCKER:-/usr/bin/docker}
[[ -x $DOCKER ]] || DOCKER=$(command -v docker || echo docker)

# podman, buildah and skopeo honour DOCKER_CONFIG too (for credentials) and fail when the
# directory it names has no config.json, so create an empty one before exporting it.
ensure_client_config() {
	mkdir -p "$DIR/client"
	[[ -s $DIR/client/config.json ]] || echo '{}' >"$DIR/client/config.json"
}

docker_cli() { DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$DIR/client "$DOCKER" "$@"; }

write_config() {
	local regs=() host port
	for port in "$BERTH_PORT_PLAIN" "$BERTH_PORT_HTPASSWD" "$BERTH_PORT_TLS" "$BERTH_PORT_TOKEN" "$BERTH_PORT_MTLS"; do
		for host in localhost 127.0.0.1; do regs+=("$host:$port"); done
	done
	mkdir -p "$DIR/data" "$DIR/exec"
	jq -n --arg dir "$DIR" --arg sock "unix://$SOCK" --args '{
		"data-root": ($dir + "/data"),
		"exec-root": ($dir + "/exec"),
		"pidfile": ($dir + "/dockerd.pid"),
		"hosts": [$sock],
		"iptables": false,
		"ip-masq": false,
		"ip-forward": false,
		"bridge": "none",
		"storage-driver": "overlay2",
		"insecure-registries": $ARGS.positional,
		"containerd-namespace": "berth-ci",
		"containerd-plugins-namespace": "berth-ci-plugins",
		"log-level": "warn",
		"features": {"buildkit": true}
	}' "${regs[@]}" >"$DIR/daemon.json"
}

start() {
	ensure_client_config
	if ci_pid_alive "$PIDFILE" dockerd && docker_cli version >/dev/null 2>&1; then
		ci_log "dockerd already running (pid $(<"$PIDFILE"), $SOCK)"
		return 0
	fi
	command -v "$DOCKERD" >/dev/null || ci_die "$DOCKERD not found; run scripts/ci/install-deps.sh"
	write_config
	rm -f "$SOCK"
	# dockerd writes its own pid file; ours is written first so stop works even if it dies early.
	ci_start_bg "$DIR/dockerd.launch.pid" "$DIR/dockerd.log" "$DOCKERD" --config-file "$DIR/daemon.json"
	local i
	for ((i = 0; i < 300; i++)); do
		docker_cli version >/dev/null 2>&1 && break
		if ! ci_pid_alive "$DIR/dockerd.launch.pid" dockerd; then
			tail -n 20 "$DIR/dockerd.log" >&2 || true
			ci_die "dockerd exited during start; log: $DIR/dockerd.log"
		fi
		sleep 0.1
	done
	docker_cli version >/dev/null 2>&1 || ci_die "dockerd did not answer on $SOCK within 30s; log: $DIR/dockerd.log"
	mv -f "$DIR/dockerd.launch.pid" "$PIDFILE"
	ci_log "dockerd running (pid $(<"$PIDFILE"), $SOCK, $(docker_cli version --format '{{.Server.Version}}'))"
}

stop() {
	local pidfile=$PIDFILE
	[[ -s $pidfile ]] || pidfile=$DIR/dockerd.launch.pid
	if ci_pid_alive "$pidfile" dockerd; then
		# dockerd stops its containers and supervised containerd and unmounts on SIGTERM.
		ci_stop_pidfile "$pidfile" dockerd 60
		ci_log "dockerd stopped"
	fi
	rm -f "$PIDFILE" "$DIR/dockerd.launch.pid" "$SOCK"
	ci_umount_under "$DIR"
}

status() {
	if ci_pid_alive "$PIDFILE" dockerd && docker_cli version >/dev/null 2>&1; then
		echo "dockerd running pid $(<"$PIDFILE") $SOCK"
	else
		echo "dockerd stopped"
		return 1
	fi
}

print_env() {
	ensure_client_config
	cat <<EOF
export DOCKER_HOST=unix://$SOCK
export DOCKER_CONFIG=$DIR/client
export BERTH_DOCKER=$DOCKER
EOF
}

check() {
	start
	local ref=localhost:$BERTH_PORT_PLAIN/library/busybox:latest out
	docker_cli pull -q "$ref" >/dev/null
	out=$(docker_cli run --rm --network none "$ref" sh -c 'echo ok')
	[[ $out == ok ]] || ci_die "docker run printed '$out', expected ok"
	ci_log "docker: pulled and ran $ref with --network none"
}

case ${1:-} in start | stop | restart | check) ci_lock dockerd ;; esac
case ${1:-} in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
env) print_env ;;
check) check ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
