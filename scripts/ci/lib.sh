# shellcheck shell=bash
# Shared helpers for scripts/ci/*.sh. Source it; it sets no shell options of its own.
#
# Environment (all optional):
#   BERTH_CI_STATE   state directory for registries, certificates, dockerd, fixtures
#                    (default /tmp/berth-ci). Everything the CI scripts create lives here,
#                    except podman-setup.sh's files in /etc/containers.
#   BERTH_CI_CACHE   cache for expensive, machine-local artefacts such as the debootstrap
#                    rootfs (default $BERTH_CI_STATE/cache).
#   NO_COLOR         respected by the log helpers.

BERTH_CI_STATE=${BERTH_CI_STATE:-/tmp/berth-ci}
BERTH_CI_CACHE=${BERTH_CI_CACHE:-$BERTH_CI_STATE/cache}
BERTH_CI_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
BERTH_CI_ROOT=$(cd "$BERTH_CI_SCRIPTS/../.." && pwd)

# Ports. Overridable for a machine where one is taken, but tests should read them from
# `registry.sh env` rather than assume the defaults.
BERTH_PORT_PLAIN=${BERTH_PORT_PLAIN:-5000}
BERTH_PORT_HTPASSWD=${BERTH_PORT_HTPASSWD:-5001}
BERTH_PORT_TLS=${BERTH_PORT_TLS:-5002}
BERTH_PORT_TOKEN=${BERTH_PORT_TOKEN:-5003}
BERTH_PORT_MTLS=${BERTH_PORT_MTLS:-5004}
BERTH_PORT_TOKEN_SERVER=${BERTH_PORT_TOKEN_SERVER:-5005}

ci_log() {
	if [[ -t 2 && -z ${NO_COLOR:-} ]]; then
		printf '\033[1m[%s]\033[0m %s\n' "${0##*/}" "$*" >&2
	else
		printf '[%s] %s\n' "${0##*/}" "$*" >&2
	fi
}

ci_die() {
	ci_log "error: $*"
	exit 1
}

# ci_pid_alive PIDFILE PATTERN: true when PIDFILE names a live process whose command line
# contains PATTERN (guards against a recycled pid after a reboot or a deleted state dir).
ci_pid_alive() {
	local pidfile=$1 pattern=$2 pid
	[[ -s $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# ci_stop_pidfile PIDFILE PATTERN [TIMEOUT]: SIGTERM, wait, then SIGKILL. Only the process
# named in PIDFILE is signalled, and only if its command line still matches PATTERN.
ci_stop_pidfile() {
	local pidfile=$1 pattern=$2 timeout=${3:-15} pid i
	if ! ci_pid_alive "$pidfile" "$pattern"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(<"$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		[[ -d /proc/$pid ]] || break
		sleep 0.1
	done
	if [[ -d /proc/$pid ]]; then
		ci_log "pid $pid ($pattern) ignored SIGTERM for ${timeout}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$pidfile"
}

# ci_port_busy PORT: true when something listens on 127.0.0.1:PORT (or the wildcard).
ci_port_busy() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# ci_port_owner PORT: "pid/comm" of the listener, best effort, for error messages.
ci_port_owner() {
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n1
}

# ci_start_bg PIDFILE LOGFILE CMD...: start CMD in its own session, detached from our
# stdio and from every other descriptor we hold (a daemon inheriting a ci_lock descriptor
# would hold that lock for its whole life), and record its pid. The subshell execs setsid,
# and setsid does not fork because a background job of a non-interactive shell is never a
# process-group leader, so $! is CMD's own pid.
ci_start_bg() {
	local pidfile=$1 logfile=$2
	shift 2
	(
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			if ((fd > 2)); then eval "exec $fd>&-"; fi
		done
		exec setsid "$@" >>"$logfile" 2>&1 </dev/null
	) &
	echo $! >"$pidfile"
}

# ci_umount_under DIR: unmount everything mounted at or below DIR, deepest first (dockerd
# leaves exec/netns/default behind; an interrupted chroot step may leave more).
ci_umount_under() {
	local d m
	d=$(realpath -m "$1")
	awk -v p="$d" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
}

# ci_lock NAME: hold an exclusive lock on $BERTH_CI_STATE/.NAME.lock until this shell exits,
# so two test runs starting the same service or building fixtures do not race.
ci_lock() {
	mkdir -p "$BERTH_CI_STATE"
	exec {CI_LOCK_FD}>"$BERTH_CI_STATE/.$1.lock"
	if ! flock -n "$CI_LOCK_FD"; then
		ci_log "waiting for another ${0##*/} ($BERTH_CI_STATE/.$1.lock)"
		flock "$CI_LOCK_FD"
	fi
}
