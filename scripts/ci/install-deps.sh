#!/usr/bin/env bash
# Install every Debian package the tests, fixtures and benchmarks need. Idempotent: when
# all packages are already installed it only runs dpkg-query (well under a second).
#
# Usage: scripts/ci/install-deps.sh [--check]
#   --check   list missing packages and exit 1 if any; install nothing.
#
# Needs root (CI runs as root) and Debian 12 apt sources. Uses --no-install-recommends so
# the set is the same on every machine; what podman/docker only recommend but we rely on
# is listed explicitly.
set -euo pipefail

PACKAGES=(
	# registries and peer tools
	docker-registry runc skopeo podman buildah umoci docker.io containerd
	conmon catatonit containernetworking-plugins golang-github-containers-common
	uidmap slirp4netns fuse-overlayfs iptables tini
	# fixture building
	busybox-static debootstrap jq pigz zstd gzip xz-utils bzip2 tar coreutils openssl
	apache2-utils ca-certificates curl python3
	# the SPDX project's validator for berth's SBOMs (pip, in a venv; see the end)
	python3-venv
	# benchmarks
	hyperfine time
	# building berth-runtime (libcontainer's seccomp support links libseccomp)
	libseccomp-dev pkg-config
	# system tools used by tests and scripts
	iproute2 util-linux e2fsprogs procps kmod mount
	# multi-platform builds and runs: QEMU user emulators for binfmt_misc (fix-binary flag)
	qemu-user-static binfmt-support
	# build --ssh (ssh-agent, ssh-add, ssh-keygen) and git contexts (git CLI, git-daemon)
	openssh-client git
)

# One dpkg-query for all: it prints a line for each package it knows; a package it has
# never heard of is simply absent, so anything not reported installed is missing.
declare -A installed=()
while read -r pkg status; do
	if [[ $status == ii ]]; then installed[$pkg]=1; fi
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
	if [[ -z ${installed[$pkg]:-} ]]; then missing+=("$pkg"); fi
done

if [[ ${1:-} == --check ]]; then
	if ((${#missing[@]})); then
		printf 'missing: %s\n' "${missing[*]}"
		exit 1
	fi
	echo "all ${#PACKAGES[@]} packages installed"
	exit 0
fi

if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#PACKAGES[@]} packages already installed" >&2
else
	[[ $(id -u) == 0 ]] || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
	# Never let package scripts start daemons (docker-registry would take port 5000).
	policy_rc_created=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy_rc_created=1
	fi
	trap '[[ -n $policy_rc_created ]] && rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU user emulation for foreign platforms (run --platform, build --platform a,b): the
# emulators are registered with binfmt_misc's F (fix-binary) flag, so they work inside a
# container's mount namespace. binfmt_misc may not be mounted (containers, minimal systems):
# mount it where the kernel allows, then (re-)enable the qemu entries. Failure is not fatal:
# without emulation only the host's platforms run (`berth system info` lists them).
register_binfmt() {
	local bm=/proc/sys/fs/binfmt_misc
	if [[ ! -e $bm/register ]]; then
		mount -t binfmt_misc binfmt_misc "$bm" 2>/dev/null || {
			echo "install-deps: cannot mount binfmt_misc: no emulation of foreign platforms" >&2
			return 0
		}
	fi
	local arch
	# arm64 and arm are what the tests, the demo and the bench build for; add others here.
	for arch in aarch64 arm; do
		if [[ -e /usr/share/binfmts/qemu-$arch && ! -e $bm/qemu-$arch ]]; then
			update-binfmts --enable "qemu-$arch" >/dev/null 2>&1 ||
				echo "install-deps: could not register qemu-$arch with binfmt_misc" >&2
		fi
	done
}
if [[ $(id -u) == 0 ]] && command -v update-binfmts >/dev/null; then
	register_binfmt
fi

# The docker-registry package ships a service listening on :5000 and docker.io one on the
# default socket; under systemd they may have been started. Ours run by hand (registry.sh,
# dockerd.sh), so the packaged registry must not hold port 5000.
if [[ -d /run/systemd/system ]] && systemctl is-active --quiet docker-registry.service 2>/dev/null; then
	echo "install-deps: stopping and disabling the packaged docker-registry.service (port 5000)" >&2
	systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
fi

# pyspdxtools (PyPI spdx-tools) validates the SBOMs berth writes (berth-build attest tests);
# Debian has no package for it, so it lives in its own venv.
if [[ ${1:-} != --check ]] && ! command -v pyspdxtools >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
	echo "install-deps: installing spdx-tools (pyspdxtools) into /opt/berth-ci/spdx-venv" >&2
	python3 -m venv /opt/berth-ci/spdx-venv
	/opt/berth-ci/spdx-venv/bin/pip install -q spdx-tools
	ln -sf /opt/berth-ci/spdx-venv/bin/pyspdxtools /usr/local/bin/pyspdxtools
fi
