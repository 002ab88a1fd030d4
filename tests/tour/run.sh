#!/usr/bin/env bash
# The seed tour (../shared/seed/docker-images.md) end to end, with berth in place of docker.
#
# Walks the tour from top to bottom: every command of its ```bash blocks and every ```dockerfile
# block, in order, each followed by assertions of its effect. Commands run exactly as the tour
# writes them (each is checked to be a line of the tour, and at the end every line of the tour
# must have been run); Dockerfiles are taken from the tour itself. What the tour leaves implicit
# (a tag to build a Dockerfile with, an app to build, a container to export, re-creating what
# "Removing Images" removed, a corrected variant of a Dockerfile that fails as written) runs as
# an "[extra]" step. See docs/tour.md for the mapping and the environment substitutions.
#
# Usage: tests/tour/run.sh
# Output: TAP: "ok N - <command>" per step (with its directory and time), "not ok N - …" and a
# precise message on failure (the script stops there), "not ok N - … # TODO bug: …" for a
# known berth bug (the script goes on and exits 1 at the end).
#
# Environment:
#   BERTH            the binary (default: the newer of target/release/berth, target/debug/berth)
#   TOUR_MD          the tour (default ../shared/seed/docker-images.md next to the repository)
#   TOUR_KEEP=1      keep the work directory (store, contexts, logs) for inspection
#   BERTH_CI_STATE   as for scripts/ci/*.sh; registries and fixtures are started/built through
#                    scripts/ci/registry.sh and scripts/ci/fixtures.sh (idempotent, ~1 s when up)
# Needs root (RUN steps and `run` use real containers), network to deb.debian.org, PyPI and npm
# (RUN apt-get/pip/npm), and: jq curl python3 script skopeo tar htpasswd docker-registry.

# Tour commands and Dockerfile lines are quoted as the tour writes them, unexpanded.
# shellcheck disable=SC2016
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOUR_MD=${TOUR_MD:-$ROOT/../shared/seed/docker-images.md}
T_START=$EPOCHREALTIME

say() { printf '%s\n' "$*"; }
note() { printf '# %s\n' "$*"; }
die() { # die MESSAGE: a setup problem (not a step)
	printf 'Bail out! %s\n' "$*"
	exit 1
}

# ------------------------------------------------------------------------------------ binary
if [[ -z ${BERTH:-} ]]; then
	rel=$ROOT/target/release/berth dbg=$ROOT/target/debug/berth
	if [[ -x $rel && (! -x $dbg || $rel -nt $dbg) ]]; then BERTH=$rel; elif [[ -x $dbg ]]; then BERTH=$dbg; fi
fi
[[ -n ${BERTH:-} && -x $BERTH ]] || die "no berth binary: build it (cargo build -p berth) or set BERTH"
BERTH=$(realpath "$BERTH")
export BERTH
docker() { "$BERTH" "$@"; }

for tool in jq curl python3 script skopeo tar htpasswd sha256sum base64 awk; do
	command -v "$tool" >/dev/null || die "$tool not found (scripts/ci/install-deps.sh installs it)"
done
REGISTRY_BIN=${BERTH_REGISTRY_BIN:-/usr/bin/docker-registry}
[[ -x $REGISTRY_BIN ]] || die "$REGISTRY_BIN not found (Debian package docker-registry)"
[[ -s $TOUR_MD ]] || die "the tour is missing: $TOUR_MD (set TOUR_MD)"
((EUID == 0)) || die "run as root: RUN steps and 'run' start real containers"

# ------------------------------------------------------------------------------------ the tour
# md_blocks: "LANG<TAB>N<TAB>LINE" for every line inside a fenced block (N counts blocks per LANG).
md_blocks() {
	awk '/^```/ { if (inb) { inb = 0 } else { inb = 1; lang = substr($0, 4); cnt[lang]++ }; next }
		inb { printf "%s\t%d\t%s\n", lang, cnt[lang], $0 }' "$TOUR_MD"
}
# md_block LANG N: the Nth block of LANG, verbatim.
md_block() {
	md_blocks | awk -F'\t' -v l="$1" -v n="$2" '$1 == l && $2 == n { sub(/^[^\t]*\t[^\t]*\t/, ""); print }'
}

WORK=$(mktemp -d /tmp/berth-tour.XXXXXX)
chmod 755 "$WORK"
# The tour's command lines: every non-comment line of a bash block, and the build command the
# Build Arguments Dockerfile gives in a comment.
md_blocks | awk -F'\t' '$1 == "bash" { sub(/^[^\t]*\t[^\t]*\t/, ""); sub(/^[ \t]+/, ""); if ($0 != "" && $0 !~ /^#/) print }' >"$WORK/tour-commands"
md_blocks | awk -F'\t' '$1 == "dockerfile" && $3 ~ /^# docker / { sub(/^[^\t]*\t[^\t]*\t# /, ""); print }' >>"$WORK/tour-commands"
: >"$WORK/covered"
N_DOCKERFILES=$(md_blocks | awk -F'\t' '$1 == "dockerfile" { n = $2 } END { print n + 0 }')
((N_DOCKERFILES == 8)) || die "the tour has $N_DOCKERFILES Dockerfiles, this test knows 8: update tests/tour/run.sh"

# ------------------------------------------------------------------------------------ steps
N=0 TODO=0 CUR='' CWD=$WORK T_STEP=$EPOCHREALTIME
OUT=$WORK/step.out ERR=$WORK/step.err RC=0
declare -a PIDS=()

elapsed() { # elapsed START: seconds since START (an EPOCHREALTIME), one decimal
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}
where() { [[ $CWD == "$WORK" ]] && echo "" || echo "  (in ${CWD#"$WORK"/}/)"; }

# run_line LINE [STDIN]: eval LINE in CWD (docker is berth), stdout/stderr/status to OUT/ERR/RC.
run_line() {
	local line=$1
	T_STEP=$EPOCHREALTIME
	set +e
	if (($# > 1)); then
		(cd "$CWD" && eval "$line") <<<"$2" >"$OUT" 2>"$ERR"
	else
		(cd "$CWD" && eval "$line") </dev/null >"$OUT" 2>"$ERR"
	fi
	RC=$?
	set -e
}

# run_pty LINE INPUT...: LINE under a pseudo-terminal (script), typing each INPUT line after a
# pause; the terminal's output (stdout and stderr together) goes to OUT.
run_pty() {
	local line=$1 i
	shift
	T_STEP=$EPOCHREALTIME
	set +e
	(
		for i in "$@"; do
			sleep 1.5
			printf '%s\n' "$i"
		done
		sleep 4
	) | (cd "$CWD" && SHELL=/bin/bash script -qec "$WORK/bin/tour-eval $(printf %q "$line")" /dev/null) >"$OUT" 2>"$ERR"
	RC=${PIPESTATUS[1]}
	set -e
}

is_tour_line() { grep -qxF -- "$1" "$WORK/tour-commands"; }

# tour LINE [STDIN]: a command of the tour, exactly as written.
tour() {
	is_tour_line "$1" || die "test bug: not a command of the tour: $1"
	printf '%s\n' "$1" >>"$WORK/covered"
	N=$((N + 1)) CUR=$1$(where)
	run_line "$@"
}
# tour_pty LINE INPUT...: a command of the tour that needs a terminal.
tour_pty() {
	is_tour_line "$1" || die "test bug: not a command of the tour: $1"
	printf '%s\n' "$1" >>"$WORK/covered"
	N=$((N + 1)) CUR="$1$(where) [terminal: script]"
	run_pty "$@"
}
# extra WHY LINE [STDIN]: a command of this test (not of the tour); WHY says what it is for.
extra() {
	N=$((N + 1)) CUR="[extra] $2$(where) -- $1"
	run_line "$2" "${@:3}"
}

pass() { say "ok $N - $CUR [$(elapsed "$T_STEP")s]"; }
dump() {
	local f
	for f in OUT ERR; do
		[[ -s ${!f} ]] || continue
		say "#   --- $( [[ $f == OUT ]] && echo stdout || echo stderr) (last 40 lines)"
		tail -n 40 "${!f}" | sed 's/^/#   | /'
	done
}
# fail MESSAGE...: the current step failed; say why and stop.
fail() {
	say "not ok $N - $CUR"
	local m
	for m in "$@"; do say "#   $m"; done
	say "#   exit status: $RC"
	dump
	say "Bail out! step $N failed (work directory: $WORK)"
	KEEP_WORK=1
	exit 1
}
# todo_bug WHAT: the current step fails because of a known berth bug; go on, exit 1 at the end.
todo_bug() {
	say "not ok $N - $CUR # TODO bug: $1"
	dump
	TODO=$((TODO + 1))
}

# ------------------------------------------------------------------------------------ asserts
expect_rc() {
	[[ $RC == "$1" ]] || fail "expected exit status $1, got $RC"
}
expect_out() { grep -qF -- "$1" "$OUT" || fail "stdout lacks: $1"; }
expect_err() { grep -qF -- "$1" "$ERR" || fail "stderr lacks: $1"; }
expect_out_re() { grep -qE -- "$1" "$OUT" || fail "stdout matches no line of /$1/"; }
expect_err_re() { grep -qE -- "$1" "$ERR" || fail "stderr matches no line of /$1/"; }
expect_not_err() { ! grep -qF -- "$1" "$ERR" || fail "stderr should not contain: $1" "$(grep -F -- "$1" "$ERR" | head -3)"; }
expect_eq() { # expect_eq WHAT GOT WANT
	[[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
}

QERR=$WORK/query.err
# q ARGS...: run berth for an assertion; its stdout in R (fails the step when berth fails).
q() {
	R=$("$BERTH" "$@" 2>"$QERR") || fail "berth $* failed: $(head -c 2000 "$QERR")"
}
has_image() { "$BERTH" image inspect "$1" >/dev/null 2>&1; }
expect_image() { has_image "$1" || fail "image $1 does not exist"; }
expect_no_image() { ! has_image "$1" || fail "image $1 still exists"; }
image_id() { # image_id REF: its ID in R
	q image inspect -f '{{.Id}}' "$1"
}
# cfg REF JQ: jq -c JQ applied to `inspect REF`'s only element, in R.
cfg() {
	q image inspect "$1"
	R=$(jq -c ".[0] | $2" <<<"$R") || fail "jq $2 failed on inspect $1"
}
expect_cfg() { # expect_cfg REF JQ WANT (WANT is compared with jq -c's output)
	cfg "$1" "$2"
	[[ $R == "$3" ]] || fail "inspect $1: $2 is $R, want $3"
}
# inside IMAGE CMD...: run CMD in a throw-away container of IMAGE; stdout in R.
inside() {
	local img=$1
	shift
	R=$("$BERTH" run --rm "$img" "$@" 2>"$QERR") || fail "berth run --rm $img $* failed: $(head -c 2000 "$QERR")"
}
absent_inside() { # absent_inside IMAGE PATH...
	local img=$1 p
	shift
	for p in "$@"; do
		if "$BERTH" run --rm "$img" test -e "$p" 2>"$QERR"; then fail "$p exists in $img"; fi
	done
}
# fixture_digest REPO:TAG: the digest scripts/ci/fixtures.sh pushed for it.
fixture_digest() {
	R=$(awk -F'\t' -v r="$1" '$1 == r { print $2 }' "$BERTH_CI_STATE/fixtures/fixtures.tsv")
	[[ -n $R ]] || fail "no fixture $1 in $BERTH_CI_STATE/fixtures/fixtures.tsv"
}
# expect_pulled REF FIXTURE: REF is in the store with the fixture's digest among its RepoDigests.
expect_pulled() {
	fixture_digest "$2"
	local want=$R
	q image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$1"
	grep -q "@$want\$" <<<"$R" || fail "$1: RepoDigests $(tr '\n' ' ' <<<"$R") lack $want (fixture $2)"
}
ACCEPT='application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'
# registry_digest HOST:PORT REPO TAG [USER:PASSWORD]: what the registry serves, in R.
registry_digest() {
	local auth=()
	[[ -n ${4:-} ]] && auth=(-u "$4")
	R=$(curl -s -o /dev/null -D - -I "${auth[@]}" -H "Accept: $ACCEPT" "http://$1/v2/$2/manifests/$3" |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
}
# rows FILE: the data rows of a table (without the header).
rows() { tail -n +2 "$1"; }
# column FILE NAME: the values of column NAME of a docker-style table (columns start where the
# header's names start).
column() {
	python3 - "$1" "$2" <<'EOF'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
name = sys.argv[2]
start = lines[0].find(name)
if start < 0:
    sys.exit(f"no column {name} in: {lines[0]}")
rest = lines[0][start + len(name):]
end = start + len(name) + len(rest) - len(rest.lstrip(" ")) if rest.strip() else None
for line in lines[1:]:
    print(line[start:end].rstrip())
EOF
}
# no_cached: the build's output shows no cached step, and did run steps.
expect_no_cached() {
	! grep -q 'CACHED' "$ERR" || fail "--no-cache build used the cache:" "$(grep CACHED "$ERR" | head -5)"
	grep -qE '^#[0-9]+ DONE' "$ERR" || fail "the build output shows no step that ran"
}
config_json() { # config_json: the client config file, in R ("{}" when absent)
	R=$(cat "$DOCKER_CONFIG/config.json" 2>/dev/null || echo '{}')
}

# ------------------------------------------------------------------------------------ cleanup
KEEP_WORK=${TOUR_KEEP:-0}
cleanup() {
	local rc=$? p ids=()
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	if [[ -d ${BERTH_ROOT:-/nonexistent} ]]; then
		mapfile -t ids < <("$BERTH" ps -aq 2>/dev/null)
		((${#ids[@]})) && "$BERTH" rm -f "${ids[@]}" >/dev/null 2>&1
	fi
	if awk -v p="$WORK/" 'index($5, p) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		say "# WARNING: mounts left under $WORK (not deleted):"
		awk -v p="$WORK/" 'index($5, p) == 1 { print "#   " $5 }' /proc/self/mountinfo
		KEEP_WORK=1
	fi
	if [[ $KEEP_WORK == 1 ]]; then
		say "# work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------ environment
note "berth: $BERTH"
note "tour: $TOUR_MD ($(wc -l <"$WORK/tour-commands") commands, $N_DOCKERFILES Dockerfiles)"
note "work directory: $WORK"
T_ENV=$EPOCHREALTIME
"$ROOT/scripts/ci/registry.sh" start plain >"$WORK/setup.log" 2>&1 ||
	{ cat "$WORK/setup.log"; die "scripts/ci/registry.sh start plain failed"; }
FIXTURES=all "$ROOT/scripts/ci/fixtures.sh" >>"$WORK/setup.log" 2>&1 ||
	{ tail -n 30 "$WORK/setup.log"; die "FIXTURES=all scripts/ci/fixtures.sh failed"; }
eval "$("$ROOT/scripts/ci/registry.sh" env)"
"$ROOT/scripts/ci/registry.sh" pki >>"$WORK/setup.log" 2>&1 || die "scripts/ci/registry.sh pki failed"
HUB_USER=$BERTH_REGISTRY_USER HUB_PASSWORD=$BERTH_REGISTRY_PASSWORD

# An isolated store and client configuration; nothing of the machine's configuration is read.
export BERTH_ROOT=$WORK/store DOCKER_CONFIG=$WORK/docker-config XDG_CONFIG_HOME=$WORK/xdg
export REGISTRY_AUTH_FILE=$WORK/no-auth.json CONTAINERS_REGISTRIES_CONF=$WORK/no-registries.conf
export BERTH_CERTS_D=$WORK/certs.d DOCKER_AUTH_CONFIG=
unset DOCKER_AUTH_CONFIG
mkdir -p "$BERTH_ROOT" "$DOCKER_CONFIG" "$XDG_CONFIG_HOME" "$BERTH_CERTS_D" "$WORK/bin"
: >"$CONTAINERS_REGISTRIES_CONF"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_registry NAME HTPASSWD: a CNCF distribution registry of this run (config shaped as
# scripts/ci/registry.sh's htpasswd one) on a free port of 127.0.0.1; its address in R.
# Registries written to by the tour are this run's own, so concurrent runs cannot race on tags.
start_registry() {
	local name=$1 port dir=$WORK/registry-$1
	port=$(free_port)
	mkdir -p "$dir/data"
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: berth-tour-$name
auth:
  htpasswd:
    realm: berth-tour-$name
    path: $2
EOF
	# distribution reads REGISTRY_* variables as configuration (REGISTRY_AUTH_FILE = auth.file).
	env -u REGISTRY_AUTH_FILE "$REGISTRY_BIN" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 150); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") == 401 ]] && break
		sleep 0.1
	done
	[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") == 401 ]] ||
		{ cat "$dir/registry.log"; die "registry $name did not start on 127.0.0.1:$port"; }
	R=127.0.0.1:$port
}
# Docker Hub (its API host) and myregistry.com: basic auth with the CI user (testuser).
start_registry hub "$BERTH_HTPASSWD_FILE"
HUB_REG=$R
start_registry private "$BERTH_HTPASSWD_FILE"
PRIVATE_REG=$R
# The ECR stand-in: user AWS with a random password, and an `aws` that prints it.
ECR_HOST=123456789012.dkr.ecr.us-east-1.amazonaws.com
ECR_PASSWORD=ecr-token-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
htpasswd -Bbn AWS "$ECR_PASSWORD" >"$WORK/ecr.htpasswd"
start_registry ecr "$WORK/ecr.htpasswd"
ECR_REG=$R
cat >"$WORK/bin/aws" <<EOF
#!/bin/sh
# Stand-in for the AWS CLI: \`aws ecr get-login-password [--region R]\` prints the ECR
# stand-in's password.
echo "\$*" >>"$WORK/aws.log"
if [ "\$1 \$2" = "ecr get-login-password" ]; then echo "$ECR_PASSWORD"; exit 0; fi
echo "aws stand-in: only 'ecr get-login-password' is implemented" >&2
exit 2
EOF
chmod +x "$WORK/bin/aws"
# The pty helper: eval one tour line with docker = berth.
cat >"$WORK/bin/tour-eval" <<'EOF'
#!/usr/bin/env bash
docker() { "$BERTH" "$@"; }
eval "$1"
EOF
chmod +x "$WORK/bin/tour-eval"
export PATH=$WORK/bin:$PATH

# Docker Hub's search API.
python3 "$HERE/hub-search.py" "$WORK/hub-search.port" "$WORK/hub-search.log" 2>"$WORK/hub-search.err" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $WORK/hub-search.port ]] && break; sleep 0.1; done
[[ -s $WORK/hub-search.port ]] || { cat "$WORK/hub-search.err"; die "the Hub search stand-in did not start"; }
BERTH_HUB_SEARCH_URL=http://127.0.0.1:$(<"$WORK/hub-search.port")/v1/search
export BERTH_HUB_SEARCH_URL

# Registry configuration: Hub pulls through the fixtures registry as a mirror; unreachable hosts
# remapped onto local registries (credentials and names stay those of the host).
mkdir -p "$WORK/registries"
cat >"$WORK/registries/daemon.json" <<'EOF'
{"registry-mirrors": ["http://localhost:5000"]}
EOF
cat >"$WORK/registries/registries.conf" <<EOF
# gcr.io and registry.redhat.io: the fixtures registry holds google-containers/nginx, ubi8/ubi.
[[registry]]
prefix = "gcr.io"
location = "$BERTH_REGISTRY_PLAIN"

[[registry]]
prefix = "registry.redhat.io"
location = "$BERTH_REGISTRY_PLAIN"

# A private registry with basic auth ($HUB_USER).
[[registry]]
prefix = "myregistry.com"
location = "$PRIVATE_REG"

# Docker Hub's API host (login without a server, pushes to username/myapp, pulls the mirror
# does not serve): a registry with basic auth ($HUB_USER).
[[registry]]
prefix = "registry-1.docker.io"
location = "$HUB_REG"

[[registry]]
prefix = "$ECR_HOST"
location = "$ECR_REG"
EOF
export BERTH_REGISTRIES_CONFIG=$WORK/registries/daemon.json:$WORK/registries/registries.conf

# Docker Hub's "private repository" of the tour, on the registry standing in for Hub.
skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
	--dest-creds "$HUB_USER:$HUB_PASSWORD" "docker://$BERTH_REGISTRY_PLAIN/library/busybox:latest" \
	"docker://$HUB_REG/username/private-repo:latest" >>"$WORK/setup.log" 2>&1 ||
	{ tail -n 20 "$WORK/setup.log"; die "could not seed username/private-repo on $HUB_REG"; }
registry_digest "$HUB_REG" username/private-repo latest "$HUB_USER:$HUB_PASSWORD"
PRIVATE_DIGEST=$R
[[ -n $PRIVATE_DIGEST ]] || die "username/private-repo:latest is not on $HUB_REG after seeding"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$HUB_REG/v2/username/private-repo/manifests/latest") == 401 ]] ||
	die "$HUB_REG serves username/private-repo without credentials; the private pull would prove nothing"

# The secret of the Security Best Practices build.
mkdir -p "$WORK/secrets"
SECRET=tour-api-key-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s' "$SECRET" >"$WORK/secrets/api_key.txt"
chmod 600 "$WORK/secrets/api_key.txt"
SECRET_SHA=$(printf '%s' "$SECRET" | sha256sum | cut -c1-64)

# ------------------------------------------------------------------------------------ the apps
# dockerfile N MUST_CONTAIN: the tour's Nth Dockerfile (checked to be the one this test expects).
dockerfile() {
	R=$(md_block dockerfile "$1")
	grep -qF -- "$2" <<<"$R" || die "the tour's Dockerfile #$1 no longer contains '$2': update tests/tour/run.sh"
}
# The tour's .dockerignore: the lines after "# .dockerignore" in the Optimizing Image Size block.
dockerfile 4 '# .dockerignore'
DOCKERIGNORE=$(sed -n '/^# \.dockerignore$/,$p' <<<"$R" | sed 1d)
OPTIMIZING_BLOCK=$R
[[ $DOCKERIGNORE == *node_modules* ]] || die "could not find the .dockerignore lines in the tour"

python_app() { # python_app DIR: the Flask app the Python Dockerfiles build
	mkdir -p "$1/.git"
	echo 'flask==3.0.3' >"$1/requirements.txt"
	cat >"$1/app.py" <<'EOF'
import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from the berth tour\n"


@app.route("/health")
def health():
    return jsonify(status="ok")


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "5000")))
EOF
	printf '%s\n' "$DOCKERIGNORE" >"$1/.dockerignore"
	echo '# myapp (not part of any image: .dockerignore)' >"$1/README.md"
	echo '__pycache__/' >"$1/.gitignore"
	echo 'ref: refs/heads/main' >"$1/.git/HEAD"
}
PACKAGE_LOCK='{
  "name": "myapp",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "myapp",
      "version": "1.0.0",
      "dependencies": {
        "ms": "2.1.3"
      }
    },
    "node_modules/ms": {
      "version": "2.1.3",
      "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA=="
    }
  }
}'
node_app() { # node_app DIR: the Node app the multi-stage Dockerfiles build
	mkdir -p "$1/node_modules/host-only" "$1/.git"
	cat >"$1/package.json" <<'EOF'
{
  "name": "myapp",
  "version": "1.0.0",
  "private": true,
  "main": "server.js",
  "scripts": {
    "start": "node server.js"
  },
  "dependencies": {
    "ms": "2.1.3"
  }
}
EOF
	if [[ -z ${LOCK_SOURCE:-} ]]; then
		# npm on the host writes the lock file when it can; the same lock, written by hand, otherwise.
		mkdir -p "$WORK/npm-lock"
		cp "$1/package.json" "$WORK/npm-lock/"
		if command -v npm >/dev/null &&
			(cd "$WORK/npm-lock" && timeout 120 npm install --package-lock-only --no-audit --no-fund) >"$WORK/npm-lock.log" 2>&1 &&
			jq -e '.packages["node_modules/ms"].version == "2.1.3"' "$WORK/npm-lock/package-lock.json" >/dev/null; then
			LOCK_SOURCE="npm install --package-lock-only"
		else
			printf '%s\n' "$PACKAGE_LOCK" >"$WORK/npm-lock/package-lock.json"
			LOCK_SOURCE="written by hand (npm unavailable)"
		fi
	fi
	cp "$WORK/npm-lock/package-lock.json" "$1/package-lock.json"
	cat >"$1/server.js" <<'EOF'
const http = require("http");
const ms = require("ms");

const port = Number(process.env.PORT || 3000);
http
  .createServer((req, res) => {
    res.end(`myapp up for ${ms(Math.round(process.uptime() * 1000))}\n`);
  })
  .listen(port, () => console.log(`listening on ${port}`));
EOF
	printf '%s\n' "$DOCKERIGNORE" >"$1/.dockerignore"
	echo '# myapp (not part of any image: .dockerignore)' >"$1/README.md"
	echo 'a module installed on the host: .dockerignore keeps it out' >"$1/node_modules/host-only/README"
}

mkdir -p "$WORK"/{basic,app,node-app,slim-app,buildargs,envvars,secure-app,optimized,archives}
python_app "$WORK/basic"
dockerfile 1 'FROM python:3.9-slim'
printf '%s\n' "$R" >"$WORK/basic/Dockerfile"
python_app "$WORK/app"
dockerfile 2 'FROM ubuntu:20.04'
printf '%s\n' "$R" >"$WORK/app/Dockerfile"
cat >"$WORK/app/Dockerfile.prod" <<'EOF'
# The production variant of myapp: slim Python base, dependencies first, not root.
FROM python:3.9-slim
LABEL org.example.variant="prod"
ENV FLASK_ENV=production
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY app.py .
USER nobody
EXPOSE 5000
CMD ["python", "app.py"]
EOF
node_app "$WORK/node-app"
dockerfile 3 'FROM node:16-alpine AS builder'
printf '%s\n' "$R" >"$WORK/node-app/Dockerfile"
node_app "$WORK/optimized"
dockerfile 8 'FROM node:16-alpine AS deps'
printf '%s\n' "$R" >"$WORK/optimized/Dockerfile"
note "package-lock.json: $LOCK_SOURCE"
note "environment ready in $(elapsed "$T_ENV")s: registries $BERTH_REGISTRY_PLAIN (fixtures, Hub mirror), $HUB_REG (registry-1.docker.io), $PRIVATE_REG (myregistry.com), $ECR_REG ($ECR_HOST), Hub search $BERTH_HUB_SEARCH_URL"

# ==================================================================================== the tour
section() { note "== $*"; }

# ---------------------------------------------------------------------------- Official Images
section "Types of Docker Images / Official Images"
for spec in ubuntu:20.04=library/ubuntu:20.04 nginx:latest=library/nginx:latest node:18-alpine=library/node:18-alpine \
	python:3.9=library/python:3.9 mysql:8.0=library/mysql:8.0 redis:7-alpine=library/redis:7-alpine; do
	ref=${spec%%=*} fixture=${spec#*=}
	tour "docker pull $ref"
	expect_rc 0
	expect_out "docker.io/library/$ref"
	expect_out "Status: Downloaded newer image for $ref"
	expect_pulled "$ref" "$fixture"
	pass
done

section "Community Images"
for ref in bitnami/nginx jenkins/jenkins grafana/grafana; do
	tour "docker pull $ref"
	expect_rc 0
	expect_out "Using default tag: latest"
	expect_out "docker.io/$ref:latest"
	expect_pulled "$ref:latest" "$ref:latest"
	pass
done

# ---------------------------------------------------------------------------- Basic Dockerfile
section "Custom Images / Basic Dockerfile Example (tour Dockerfile #1)"
CWD=$WORK/basic
extra "build the tour's Basic Dockerfile Example (the tour gives no command)" "docker build -t basic-app ."
expect_rc 0
expect_cfg basic-app .Config.Cmd '["python","app.py"]'
expect_cfg basic-app .Config.WorkingDir '"/app"'
expect_cfg basic-app '.Config.ExposedPorts | keys' '["5000/tcp"]'
inside basic-app python -c 'import flask, importlib.metadata as m; print(m.version("flask"))'
expect_eq "flask installed by pip in the image" "$R" "3.0.3"
inside basic-app ls -A /app
expect_eq "files in /app (.dockerignore keeps Dockerfile, README.md, .git, .gitignore, .dockerignore out)" "$(tr '\n' ' ' <<<"$R")" "app.py requirements.txt "
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Searching
section "Working with Pre-built Images / Searching Images (Hub search API stand-in)"
# search_names: the NAME column of the last search.
search_names() { R=$(column "$OUT" NAME | tr '\n' ' '); }
expect_search_header() {
	head -n1 "$OUT" | grep -qE '^NAME +DESCRIPTION +STARS +OFFICIAL *$' ||
		fail "search header is '$(head -n1 "$OUT")', want NAME DESCRIPTION STARS OFFICIAL"
}
expect_query() { # expect_query QUERY: the last request the Hub stand-in got
	local last
	last=$(tail -n1 "$WORK/hub-search.log")
	[[ $last == "/v1/search?$1" ]] || fail "the search API was asked '$last', want '/v1/search?$1'"
}
tour "docker search nginx"
expect_rc 0
expect_search_header
expect_query "q=nginx&n=25"
search_names
expect_eq NAMEs "$R" "nginx bitnami/nginx nginxinc/nginx-unprivileged nginxproxy/nginx-proxy ubuntu/nginx nginx/nginx-ingress nginx/unit nginx/nginx-prometheus-exporter rancher/nginx-ingress-controller "
R=$(rows "$OUT" | head -n1 | tr -s ' ')
expect_eq "first row" "$R" "nginx Official build of Nginx. 20374 [OK]"
expect_eq "DESCRIPTION of nginxproxy/nginx-proxy (truncated at 45 characters)" \
	"$(column "$OUT" DESCRIPTION | sed -n 4p)" "Automated nginx proxy for Docker containers …"
expect_eq "STARS" "$(column "$OUT" STARS | tr '\n' ' ')" "20374 191 158 147 112 98 65 46 11 "
pass

tour "docker search python"
expect_rc 0
expect_search_header
expect_query "q=python&n=25"
search_names
expect_eq NAMEs "$R" "python pypy hylang circleci/python bitnami/python ubuntu/python cimg/python "
expect_eq OFFICIAL "$(column "$OUT" OFFICIAL | tr '\n' ' ')" "[OK] [OK] [OK]     "
pass

tour "docker search --limit 5 ubuntu"
expect_rc 0
expect_search_header
expect_query "q=ubuntu&n=5"
search_names
expect_eq "NAMEs (5 rows)" "$R" "ubuntu ubuntu/nginx ubuntu/bind9 ubuntu/squid ubuntu/apache2 "
pass

tour "docker search --filter stars=100 nginx"
expect_rc 0
expect_search_header
search_names
expect_eq "NAMEs with at least 100 stars" "$R" "nginx bitnami/nginx nginxinc/nginx-unprivileged nginxproxy/nginx-proxy ubuntu/nginx "
pass

tour "docker search --filter is-official=true python"
expect_rc 0
expect_search_header
search_names
expect_eq "official NAMEs" "$R" "python pypy hylang "
expect_eq OFFICIAL "$(column "$OUT" OFFICIAL | tr '\n' ' ')" "[OK] [OK] [OK] "
pass

# ---------------------------------------------------------------------------- Pulling
section "Pulling Images"
tour "docker pull nginx"
expect_rc 0
expect_out "Using default tag: latest"
expect_out "Status: Image is up to date for nginx:latest"
expect_out "docker.io/library/nginx:latest"
pass

tour "docker pull nginx:1.21"
expect_rc 0
expect_out "Status: Downloaded newer image for nginx:1.21"
expect_pulled nginx:1.21 library/nginx:1.21
image_id nginx:latest
ID_NGINX=$R
image_id nginx:1.21
expect_eq "nginx:1.21 and nginx:latest (one fixture)" "$R" "$ID_NGINX"
pass

tour "docker pull gcr.io/google-containers/nginx"
expect_rc 0
expect_out "gcr.io/google-containers/nginx:latest"
expect_pulled gcr.io/google-containers/nginx:latest google-containers/nginx:latest
pass

tour "docker pull registry.redhat.io/ubi8/ubi"
expect_rc 0
expect_out "registry.redhat.io/ubi8/ubi:latest"
expect_pulled registry.redhat.io/ubi8/ubi:latest ubi8/ubi:latest
pass

# ---------------------------------------------------------------------------- Listing
section "Listing Images"
EXPECTED_ROWS=("ubuntu 20.04" "nginx latest" "nginx 1.21" "node 18-alpine" "python 3.9" "mysql 8.0" "redis 7-alpine"
	"bitnami/nginx latest" "jenkins/jenkins latest" "grafana/grafana latest" "gcr.io/google-containers/nginx latest"
	"registry.redhat.io/ubi8/ubi latest" "basic-app latest")
tour "docker images"
expect_rc 0
head -n1 "$OUT" | grep -qE '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE *$' || fail "header: $(head -n1 "$OUT")"
for r in "${EXPECTED_ROWS[@]}"; do
	rows "$OUT" | awk '{ print $1, $2 }' | grep -qxF "$r" || fail "no row for $r"
done
if rows "$OUT" | awk '{ print $3 }' | grep -vqE '^[0-9a-f]{12}$'; then fail "an IMAGE ID is not 12 hex digits"; fi
cp "$OUT" "$WORK/images.out"
IMAGE_ROWS=$(rows "$OUT" | wc -l)
pass

tour "docker image ls"
expect_rc 0
# The same table as `docker images` (CREATED aside: "3 seconds ago" may have become "4 seconds").
without_created() { paste <(column "$1" REPOSITORY) <(column "$1" TAG) <(column "$1" "IMAGE ID") <(column "$1" SIZE); }
# The header's padding follows the widest CREATED cell ("1 second ago" vs "2 seconds ago"), so
# the header is compared word by word.
[[ $(head -n1 "$OUT" | tr -s ' ') == "$(head -n1 "$WORK/images.out" | tr -s ' ')" ]] || fail "header differs from docker images'"
diff <(without_created "$WORK/images.out") <(without_created "$OUT") >"$WORK/diff.out" ||
	fail "docker image ls differs from docker images:" "$(head -5 "$WORK/diff.out")"
pass

tour 'docker images --format "table {{.Repository}}\t{{.Tag}}\t{{.Size}}"'
expect_rc 0
head -n1 "$OUT" | grep -qE '^REPOSITORY +TAG +SIZE *$' || fail "header: $(head -n1 "$OUT")"
expect_eq "rows" "$(rows "$OUT" | wc -l)" "$IMAGE_ROWS"
rows "$OUT" | awk 'NF != 2 + 1 || $3 !~ /^[0-9.]+[kMG]?B$/ { bad = 1 } END { exit bad }' ||
	fail "rows are not REPOSITORY TAG SIZE"
rows "$OUT" | grep -qE '^ubuntu +20\.04 +[0-9.]+MB *$' || fail "no 'ubuntu 20.04 <size>MB' row"
pass

tour "docker images -q"
expect_rc 0
if grep -vqE '^[0-9a-f]{12}$' "$OUT"; then fail "a line is not a 12-hex-digit ID"; fi
# docker prints the ID of every row of `docker images` (an image with several tags several
# times: docker/cli formatter.imageFormat, quiet format "{{.ID}}").
if [[ $(wc -l <"$OUT") != "$IMAGE_ROWS" &&
	$(sort -u "$OUT") == "$(rows "$WORK/images.out" | awk '{ print $3 }' | sort -u)" ]]; then
	todo_bug "images -q prints each ID once; docker prints one ID per row of 'docker images' ($IMAGE_ROWS here, $(wc -l <"$OUT") printed): crates/berth/src/cmd/images.rs dedups (and crates/berth/tests/images.rs asserts it)"
else
	expect_eq "IDs (the IMAGE ID column)" "$(sort "$OUT" | tr '\n' ' ')" "$(rows "$WORK/images.out" | awk '{ print $3 }' | sort | tr '\n' ' ')"
	pass
fi

tour 'docker images --filter "dangling=true"'
expect_rc 0
head -n1 "$OUT" | grep -qE '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE *$' || fail "header: $(head -n1 "$OUT")"
expect_eq "dangling images (none yet)" "$(rows "$OUT" | wc -l)" "0"
pass

# ---------------------------------------------------------------------------- Image Information
section "Image Information"
tour "docker inspect nginx:latest"
expect_rc 0
jq -e 'length == 1' "$OUT" >/dev/null || fail "not a JSON array of one image"
expect_eq ".[0].Id" "$(jq -r '.[0].Id' "$OUT")" "$ID_NGINX"
jq -e '.[0].RepoTags | index("nginx:latest") and index("nginx:1.21")' "$OUT" >/dev/null || fail "RepoTags: $(jq -c '.[0].RepoTags' "$OUT")"
expect_eq ".[0].Config.Cmd" "$(jq -c '.[0].Config.Cmd' "$OUT")" '["httpd","-f","-v","-p","80","-h","/usr/share/nginx/html"]'
expect_eq ".[0].Os/.Architecture" "$(jq -r '.[0].Os + "/" + .[0].Architecture' "$OUT")" "linux/amd64"
pass

tour "docker history nginx:latest"
expect_rc 0
head -n1 "$OUT" | grep -qE '^IMAGE +CREATED +CREATED BY +SIZE +COMMENT *$' || fail "header: $(head -n1 "$OUT")"
expect_eq "rows (one per history entry of the fixture)" "$(rows "$OUT" | wc -l)" "4"
expect_eq "top row's IMAGE" "$(rows "$OUT" | head -n1 | awk '{ print $1 }')" "${ID_NGINX:7:12}"
expect_out "EXPOSE 80"
pass

tour "docker image inspect nginx:latest | jq '.[0].RootFS.Layers'"
expect_rc 0
fixture_digest library/nginx:latest
manifest=$BERTH_FIXTURES_OCI/blobs/sha256/${R#sha256:}
config=$BERTH_FIXTURES_OCI/blobs/sha256/$(jq -r '.config.digest[7:]' "$manifest")
expect_eq "the layers (the fixture config's diff_ids)" "$(jq -c . "$OUT")" "$(jq -c .rootfs.diff_ids "$config")"
pass

# ---------------------------------------------------------------------------- Building
section "Building Custom Images / Essential Instructions (tour Dockerfile #2) / Building Images"
CWD=$WORK/app
# expect_myapp REF: what the Essential Instructions Dockerfile makes.
expect_myapp() {
	expect_cfg "$1" .Config.Labels.maintainer '"your-email@example.com"'
	cfg "$1" .Config.Env
	jq -e 'index("PYTHONPATH=/app") and index("FLASK_APP=app.py")' <<<"$R" >/dev/null || fail "Env: $R"
	expect_cfg "$1" .Config.WorkingDir '"/app"'
	expect_cfg "$1" .Config.User '"appuser"'
	expect_cfg "$1" '.Config.ExposedPorts | keys' '["5000/tcp"]'
	expect_cfg "$1" .Config.Healthcheck '{"Test":["CMD-SHELL","curl -f http://localhost:5000/health || exit 1"],"Interval":30000000000,"Timeout":3000000000,"StartPeriod":5000000000,"Retries":3}'
	expect_cfg "$1" .Config.Cmd '["python3","app.py"]'
}
tour "docker build -t myapp:1.0 ."
CUR+=" [tour Dockerfile #2, Essential Instructions]"
expect_rc 0
expect_myapp myapp:1.0
inside myapp:1.0 id -un
expect_eq "the user a container runs as" "$R" "appuser"
inside myapp:1.0 python3 -c 'import flask, importlib.metadata as m; print(m.version("flask"))'
expect_eq "flask (pip3 install -r requirements.txt)" "$R" "3.0.3"
inside myapp:1.0 stat -c '%U:%G' /app /app/app.py
expect_eq "owner of /app and app.py (chown -R appuser:appuser)" "$(tr '\n' ' ' <<<"$R")" "appuser:appuser appuser:appuser "
inside myapp:1.0 ls -A /app
expect_eq "files in /app (.dockerignore; Dockerfile.prod is not ignored)" "$(tr '\n' ' ' <<<"$R")" "Dockerfile.prod app.py requirements.txt "
image_id myapp:1.0
ID_MYAPP_1=$R
pass

tour "docker build -f Dockerfile.prod -t myapp:prod ."
expect_rc 0
expect_cfg myapp:prod '.Config.Labels["org.example.variant"]' '"prod"'
expect_cfg myapp:prod .Config.User '"nobody"'
cfg myapp:prod .Config.Env
jq -e 'index("FLASK_ENV=production")' <<<"$R" >/dev/null || fail "Env: $R"
inside myapp:prod ls -A /app
expect_eq "files in /app" "$(tr '\n' ' ' <<<"$R")" "app.py requirements.txt "
pass

tour "docker build --build-arg VERSION=1.0 -t myapp:1.0 ."
expect_rc 0
# The Dockerfile declares no ARG VERSION: the value changes nothing (BuildKit, unlike the classic
# builder, does not warn about it: moby/buildkit#2128).
expect_err_re '^#[0-9]+ \[7/7\] RUN useradd'
[[ $(grep -c '^#[0-9]* CACHED$' "$ERR") == 6 ]] || fail "want the 6 steps after FROM CACHED"
image_id myapp:1.0
expect_eq "image ID (nothing changed, every step cached)" "$R" "$ID_MYAPP_1"
pass

tour "docker build --no-cache -t myapp:1.0 ."
expect_rc 0
expect_no_cached
expect_myapp myapp:1.0
image_id myapp:1.0
ID_MYAPP_2=$R
[[ $ID_MYAPP_2 != "$ID_MYAPP_1" ]] || fail "a build without cache gave the same image ID (new created times expected)"
q images --filter dangling=true -q --no-trunc
grep -qxF "$ID_MYAPP_1" <<<"$R" || fail "the previous myapp:1.0 ($ID_MYAPP_1) is not dangling: $R"
pass

tour "docker build --progress=plain -t myapp:1.0 ."
expect_rc 0
expect_err_re '^#[0-9]+ \[internal\] load build definition from Dockerfile'
expect_err_re '^#[0-9]+ \[ *1/[0-9]+\] FROM docker.io/library/ubuntu:20.04'
expect_err_re '^#[0-9]+ CACHED$'
image_id myapp:1.0
expect_eq "image ID (cached)" "$R" "$ID_MYAPP_2"
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Multi-stage
section "Multi-stage Builds (tour Dockerfile #3)"
# expect_node_app REF: what the multi-stage Dockerfiles make.
expect_node_app() {
	expect_cfg "$1" .Config.Cmd '["node","server.js"]'
	inside "$1" node -e 'console.log(require("ms")(60000), require("./package.json").name)'
	expect_eq "require('ms') from /app (node_modules of the builder stage)" "$R" "1m myapp"
	inside "$1" ls -A /app /app/node_modules
	expect_eq "files" "$(tr '\n' ' ' <<<"$R")" "/app: node_modules package-lock.json package.json server.js  /app/node_modules: .package-lock.json ms "
	absent_inside "$1" /root/.npm /app/README.md /app/node_modules/host-only
	q history --no-trunc --format '{{.CreatedBy}}' "$1"
	! grep -q 'npm ci' <<<"$R" || fail "the final image's history has the builder's npm ci: $(grep 'npm ci' <<<"$R")"
}
CWD=$WORK/node-app
extra "build the tour's Multi-stage Dockerfile" "docker build -t multistage-app ."
expect_rc 0
expect_node_app multistage-app
expect_cfg multistage-app '.Config.ExposedPorts | keys' '["3000/tcp"]'
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Optimizing
section "Advanced Dockerfile Techniques / Optimizing Image Size (tour Dockerfile #4)"
CWD=$WORK/slim-app
printf '%s\n' "$OPTIMIZING_BLOCK" >"$WORK/slim-app/Dockerfile.as-written"
echo 'flask==3.0.3' >"$WORK/slim-app/requirements.txt"
extra "the block as one file: its .dockerignore lines are not instructions (BuildKit: parse error)" \
	"docker build -f Dockerfile.as-written -t slim-app ."
expect_rc 1
expect_err "unknown instruction: node_modules"
expect_err "ERROR: failed to solve: dockerfile parse error on line 13: unknown instruction: node_modules"
pass

# The block is a Dockerfile followed by a .dockerignore.
sed '/^# Use \.dockerignore file$/,$d' <<<"$OPTIMIZING_BLOCK" >"$WORK/slim-app/Dockerfile"
printf '%s\n' "$DOCKERIGNORE" >"$WORK/slim-app/.dockerignore"
extra "the Dockerfile as written: requirements.txt is never copied in, pip fails as in BuildKit" \
	"docker build -t slim-app ."
expect_rc 1
expect_err "Could not open requirements file"
expect_err_re 'ERROR: failed to solve: process "/bin/sh -c apk add --no-cache .*apk del gcc musl-dev" did not complete successfully: exit code: 1'
expect_no_image slim-app
pass

sed -i 's|^FROM python:3.9-alpine$|&\nCOPY requirements.txt .|' "$WORK/slim-app/Dockerfile"
grep -qx 'COPY requirements.txt .' "$WORK/slim-app/Dockerfile" || fail "could not correct the Dockerfile"
extra "corrected: COPY requirements.txt . after FROM" "docker build -t slim-app ."
expect_rc 0
inside slim-app python -c 'import flask, importlib.metadata as m; print(m.version("flask"))'
expect_eq "flask" "$R" "3.0.3"
if "$BERTH" run --rm slim-app sh -c 'command -v gcc' >/dev/null 2>&1; then fail "gcc is still in the image (apk del gcc musl-dev)"; fi
fixture_digest library/python:3.9-alpine
manifest=$BERTH_FIXTURES_OCI/blobs/sha256/${R#sha256:}
cfg slim-app '.RootFS.Layers | length'
expect_eq "layers (python:3.9-alpine's, COPY, one for the combined RUN)" "$R" "$(($(jq '.layers | length' "$manifest") + 2))"
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Build Arguments
section "Build Arguments (tour Dockerfile #5)"
dockerfile 5 'FROM node:${VERSION}'
printf '%s\n' "$R" >"$WORK/buildargs/Dockerfile"
CWD=$WORK/buildargs
tour "docker build --build-arg VERSION=16 --build-arg ENVIRONMENT=staging -t myapp ."
CUR+=" [tour Dockerfile #5]"
expect_rc 0
expect_err_re '^#[0-9]+ \[1/1\] FROM docker.io/library/node:16'
inside myapp node --version
[[ $R == v* ]] || fail "node --version in myapp: $R"
# ARG ENVIRONMENT is declared before FROM, so (as in BuildKit) it is not in scope after FROM:
# NODE_ENV is empty. (BuildKit, and berth, also print the UndefinedVar check warning after the
# build.)
cfg myapp .Config.Env
jq -e 'index("NODE_ENV=")' <<<"$R" >/dev/null || fail "Env should hold NODE_ENV= (ENVIRONMENT is out of scope after FROM): $R"
pass
sed 's|^FROM node:\${VERSION}$|&\nARG ENVIRONMENT|' "$WORK/buildargs/Dockerfile" >"$WORK/buildargs/Dockerfile.scoped"
extra "the tour means NODE_ENV=staging: ARG ENVIRONMENT declared again inside the stage" \
	"docker build --build-arg VERSION=16 --build-arg ENVIRONMENT=staging -f Dockerfile.scoped -t buildargs-scoped ."
expect_rc 0
cfg buildargs-scoped .Config.Env
jq -e 'index("NODE_ENV=staging")' <<<"$R" >/dev/null || fail "Env: $R"
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Environment Variables
section "Environment Variables (tour Dockerfile #6)"
dockerfile 6 'ENV DATABASE_URL=postgresql://localhost/myapp'
printf '%s\n' "$R" >"$WORK/envvars/Dockerfile"
CWD=$WORK/envvars
extra "the block as a whole Dockerfile: no FROM, as in BuildKit an error" "docker build -t envvars-app ."
expect_rc 1
expect_err "ERROR: failed to solve: no build stage in current context"
pass
{ echo 'FROM node:18-alpine'; cat "$WORK/envvars/Dockerfile"; } >"$WORK/envvars/Dockerfile.from"
extra "the block after a FROM line" "docker build -f Dockerfile.from -t envvars-app ."
expect_rc 0
cfg envvars-app .Config.Env
jq -e 'index("NODE_ENV=production") and index("PORT=3000") and index("DATABASE_URL=postgresql://localhost/myapp")' <<<"$R" >/dev/null ||
	fail "Env: $R"
expect_cfg envvars-app '.Config.ExposedPorts | keys' '["3000/tcp"]'
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Tagging
section "Image Management / Tagging Images"
tour "docker tag myapp:1.0 myapp:latest"
expect_rc 0
image_id myapp:latest
expect_eq "myapp:latest" "$R" "$ID_MYAPP_2"
pass
tour "docker tag myapp:1.0 myregistry.com/myapp:1.0"
expect_rc 0
image_id myregistry.com/myapp:1.0
expect_eq "myregistry.com/myapp:1.0" "$R" "$ID_MYAPP_2"
pass
CWD=$WORK/app
tour "docker build -t myapp:1.0 -t myapp:latest ."
expect_rc 0
image_id myapp:1.0
ID_MYAPP=$R
image_id myapp:latest
expect_eq "myapp:latest and myapp:1.0" "$R" "$ID_MYAPP"
expect_myapp myapp:latest
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Removing
section "Removing Images"
tour "docker rmi nginx:latest"
expect_rc 0
expect_out "Untagged: nginx:latest"
expect_no_image nginx:latest
expect_image nginx:1.21
image_id nginx:1.21
expect_eq "nginx:1.21 (still there: the image had another tag)" "$R" "$ID_NGINX"
pass

extra "re-create nginx:latest (removed by the previous command) for the next one" "docker pull -q nginx:latest"
expect_rc 0
expect_image nginx:latest
pass
tour "docker rmi nginx:latest ubuntu:20.04"
expect_rc 0
expect_out "Untagged: nginx:latest"
expect_out "Untagged: ubuntu:20.04"
expect_no_image nginx:latest
expect_no_image ubuntu:20.04
pass

tour "docker rmi abc123def456"
expect_rc 1
expect_err "No such image: abc123def456"
pass
image_id myapp:prod
ID_PROD=$R
extra "abc123def456 stands for an image ID: myapp:prod's" "docker rmi ${ID_PROD:7:12}"
expect_rc 0
expect_out "Untagged: myapp:prod"
expect_out "Deleted: $ID_PROD"
expect_no_image myapp:prod
pass

tour "docker rmi -f myapp:1.0"
expect_rc 0
expect_out "Untagged: myapp:1.0"
expect_no_image myapp:1.0
image_id myapp:latest
expect_eq "myapp:latest (the image had other tags)" "$R" "$ID_MYAPP"
pass

q images --filter dangling=true -q --no-trunc
DANGLING_BEFORE=$R
[[ -n $DANGLING_BEFORE ]] || die "test bug: no dangling image before docker image prune"
tour "docker image prune" y
CUR+=" [answering y]"
expect_rc 0
expect_out "WARNING! This will remove all dangling images."
expect_out "Deleted Images:"
for id in $DANGLING_BEFORE; do expect_out "deleted: $id"; done
expect_out_re '^Total reclaimed space: [0-9.]+[kMG]?B$'
q images --filter dangling=true -q
expect_eq "dangling images after the prune" "$R" ""
pass

# Docker's rule for `rmi ID`: an image whose tags are all in one repository is removed; one
# referenced in several repositories is a conflict ("must be forced"), and the status is 1.
q images --format '{{.ID}} {{.Repository}}'
printf '%s\n' "$R" >"$WORK/before-rmi-all"
KEEP_IDS=$(sort -u "$WORK/before-rmi-all" | awk '{ print $1 }' | uniq -c | awk '$1 > 1 { print $2 }')
GONE_IDS=$(sort -u "$WORK/before-rmi-all" | awk '{ print $1 }' | uniq -c | awk '$1 == 1 { print $2 }')
REPEATED=$("$BERTH" images -q | sort | uniq -d)
tour 'docker rmi $(docker images -q)'
# Status 1 when an ID is refused (conflict) or listed twice (the second rmi finds no such image).
if [[ -n $KEEP_IDS || -n $REPEATED ]]; then expect_rc 1; else expect_rc 0; fi
for id in $GONE_IDS; do
	expect_out "Deleted: sha256:$id"
done
for id in $KEEP_IDS; do
	expect_err "conflict: unable to delete $id (must be forced) - image is referenced in multiple repositories"
done
q images -q
expect_eq "images left (those referenced in several repositories)" "$(sort -u <<<"$R" | tr '\n' ' ')" "$(tr '\n' ' ' <<<"$KEEP_IDS")"
pass
note "left after docker rmi \$(docker images -q): $("$BERTH" images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' ')"

# ---------------------------------------------------------------------------- Saving and Loading
section "Saving and Loading Images"
# ensure_myapp TAG: re-create myapp:TAG when "Removing Images" removed it (rebuilt from cache).
ensure_myapp() {
	if ! has_image "myapp:$1"; then
		CWD=$WORK/app
		extra "re-create myapp:$1 (removed in Removing Images): rebuilt, from the build cache" "docker build -t myapp:$1 ."
		expect_rc 0
		expect_myapp "myapp:$1"
		pass
		CWD=$WORK
	fi
}
ensure_myapp 1.0
image_id myapp:1.0
ID_MYAPP=$R
CWD=$WORK/archives
tour "docker save -o myapp.tar myapp:1.0"
expect_rc 0
mkdir -p "$WORK/archives/saved"
tar -xf "$WORK/archives/myapp.tar" -C "$WORK/archives/saved" || fail "myapp.tar is not a tar"
expect_eq "manifest.json RepoTags" "$(jq -c '.[0].RepoTags' "$WORK/archives/saved/manifest.json")" '["myapp:1.0"]'
cfg myapp:1.0 '.RootFS.Layers | length'
expect_eq "layers in manifest.json" "$(jq '.[0].Layers | length' "$WORK/archives/saved/manifest.json")" "$R"
expect_eq "config of manifest.json (the image ID)" "sha256:$(basename "$(jq -r '.[0].Config' "$WORK/archives/saved/manifest.json")")" "$ID_MYAPP"
[[ -s $WORK/archives/saved/index.json && -s $WORK/archives/saved/oci-layout ]] || fail "no OCI layout (index.json, oci-layout) in the archive"
pass

tour "docker load -i myapp.tar"
expect_rc 0
expect_out "Loaded image: myapp:1.0"
image_id myapp:1.0
expect_eq "myapp:1.0 after load" "$R" "$ID_MYAPP"
pass
extra "the archive loads into an empty store and runs" "docker --root '$WORK/store-load' load -i myapp.tar"
expect_rc 0
expect_out "Loaded image: myapp:1.0"
R=$("$BERTH" --root "$WORK/store-load" run --rm myapp:1.0 cat /app/app.py 2>"$QERR") || fail "run in the loaded store: $(cat "$QERR")"
expect_eq "app.py in the loaded image" "$R" "$(cat "$WORK/app/app.py")"
pass

extra "the container the next command exports" "docker run --name container_name myapp:1.0 true"
expect_rc 0
q ps -a --filter name=container_name --format '{{.Names}} {{.Status}}'
[[ $R == "container_name Exited (0)"* ]] || fail "ps -a: $R"
pass
tour "docker export container_name > myapp.tar"
expect_rc 0
tar -tf "$WORK/archives/myapp.tar" | sed 's|^\./||' | sort >"$WORK/archives/export.list" || fail "the export is not a tar"
for f in app/ app/app.py app/requirements.txt etc/passwd usr/bin/python3; do
	grep -qxF "$f" "$WORK/archives/export.list" || fail "the export lacks /$f"
done
R=$(tar -xOf "$WORK/archives/myapp.tar" app/app.py 2>/dev/null || tar -xOf "$WORK/archives/myapp.tar" ./app/app.py)
expect_eq "app/app.py in the export" "$R" "$(cat "$WORK/app/app.py")"
tar -xOf "$WORK/archives/myapp.tar" etc/passwd 2>/dev/null | grep -q '^appuser:' || fail "etc/passwd in the export has no appuser"
pass

tour "docker import myapp.tar myapp:imported"
expect_rc 0
expect_out_re '^sha256:[0-9a-f]{64}$'
image_id myapp:imported
expect_eq "the printed ID" "$R" "$(cat "$OUT")"
expect_cfg myapp:imported '.RootFS.Layers | length' 1
pass
extra "the imported image's files match the export" "docker create --name imported_check myapp:imported /bin/true && docker export -o imported.tar imported_check"
expect_rc 0
tar -tf "$WORK/archives/imported.tar" | sed 's|^\./||' | sort >"$WORK/archives/imported.list"
cmp -s "$WORK/archives/export.list" "$WORK/archives/imported.list" ||
	fail "file lists differ (export of container_name vs export of a myapp:imported container):" \
		"$(diff "$WORK/archives/export.list" "$WORK/archives/imported.list" | head -10)"
R=$(tar -xOf "$WORK/archives/imported.tar" app/app.py 2>/dev/null || tar -xOf "$WORK/archives/imported.tar" ./app/app.py)
expect_eq "app/app.py" "$R" "$(cat "$WORK/app/app.py")"
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Docker Hub
section "Working with Registries / Docker Hub (registry-1.docker.io -> $HUB_REG)"
HUB_KEY=https://index.docker.io/v1/
tour_pty "docker login" "$HUB_USER" "$HUB_PASSWORD"
expect_rc 0
expect_out "Username: "
expect_out "Password: "
expect_out "Login Succeeded"
config_json
expect_eq "config.json auths[$HUB_KEY].auth" "$(jq -r --arg k "$HUB_KEY" '.auths[$k].auth' <<<"$R")" "$(printf '%s' "$HUB_USER:$HUB_PASSWORD" | base64 -w0)"
pass

extra "the image the next command pushes" "docker tag myapp:1.0 username/myapp:1.0"
expect_rc 0
pass
tour "docker push username/myapp:1.0"
expect_rc 0
expect_out "The push refers to repository [docker.io/username/myapp]"
expect_out_re '^1\.0: digest: sha256:[0-9a-f]{64} size: [0-9]+$'
PUSHED=$(grep -oE 'sha256:[0-9a-f]{64}' "$OUT")
registry_digest "$HUB_REG" username/myapp 1.0 "$HUB_USER:$HUB_PASSWORD"
expect_eq "what the Hub stand-in serves for username/myapp:1.0" "$R" "$PUSHED"
pass

tour "docker pull username/private-repo:latest"
expect_rc 0
expect_out "docker.io/username/private-repo:latest"
q image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' username/private-repo:latest
grep -qxF "username/private-repo@$PRIVATE_DIGEST" <<<"$R" || fail "RepoDigests $R lack $PRIVATE_DIGEST"
pass

tour "docker logout"
expect_rc 0
expect_out "Removing login credentials for $HUB_KEY"
config_json
expect_eq "config.json auths[$HUB_KEY]" "$(jq -c --arg k "$HUB_KEY" '.auths[$k]' <<<"$R")" "null"
pass

# ---------------------------------------------------------------------------- Private Registries
section "Private Registries (myregistry.com -> $PRIVATE_REG)"
tour_pty "docker login myregistry.com" "$HUB_USER" "$HUB_PASSWORD"
expect_rc 0
expect_out "Login Succeeded"
config_json
expect_eq "config.json auths[myregistry.com].auth" "$(jq -r '.auths["myregistry.com"].auth' <<<"$R")" "$(printf '%s' "$HUB_USER:$HUB_PASSWORD" | base64 -w0)"
pass

tour "docker tag myapp:1.0 myregistry.com/myapp:1.0"
expect_rc 0
image_id myregistry.com/myapp:1.0
expect_eq "myregistry.com/myapp:1.0" "$R" "$ID_MYAPP"
pass

tour "docker push myregistry.com/myapp:1.0"
expect_rc 0
expect_out "The push refers to repository [myregistry.com/myapp]"
expect_out_re '^1\.0: digest: sha256:[0-9a-f]{64} size: [0-9]+$'
PUSHED=$(grep -oE 'sha256:[0-9a-f]{64}' "$OUT")
registry_digest "$PRIVATE_REG" myapp 1.0 "$HUB_USER:$HUB_PASSWORD"
expect_eq "what myregistry.com serves for myapp:1.0" "$R" "$PUSHED"
pass

tour "docker pull myregistry.com/myapp:1.0"
expect_rc 0
expect_out "Digest: $PUSHED"
expect_out "Status: Image is up to date for myregistry.com/myapp:1.0"
pass
extra "the pushed image is complete: pull it into an empty store" "docker --root '$WORK/store-pull' pull myregistry.com/myapp:1.0"
expect_rc 0
R=$("$BERTH" --root "$WORK/store-pull" image inspect -f '{{.Id}}' myregistry.com/myapp:1.0 2>"$QERR") || fail "$(cat "$QERR")"
expect_eq "image ID pulled back" "$R" "$ID_MYAPP"
pass

# ---------------------------------------------------------------------------- AWS ECR
section "AWS ECR Example ($ECR_HOST -> $ECR_REG, an aws stand-in)"
tour "aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin 123456789012.dkr.ecr.us-east-1.amazonaws.com"
expect_rc 0
expect_out "Login Succeeded"
expect_eq "aws was asked" "$(tail -n1 "$WORK/aws.log")" "ecr get-login-password --region us-east-1"
config_json
expect_eq "config.json auths[$ECR_HOST].auth" "$(jq -r --arg k "$ECR_HOST" '.auths[$k].auth' <<<"$R")" "$(printf '%s' "AWS:$ECR_PASSWORD" | base64 -w0)"
pass

if ! has_image myapp:latest; then
	CWD=$WORK/app
	extra "re-create myapp:latest (removed in Removing Images)" "docker tag myapp:1.0 myapp:latest"
	expect_rc 0
	pass
	CWD=$WORK
fi
image_id myapp:latest
ID_LATEST=$R
tour "docker tag myapp:latest 123456789012.dkr.ecr.us-east-1.amazonaws.com/myapp:latest"
expect_rc 0
image_id "$ECR_HOST/myapp:latest"
expect_eq "$ECR_HOST/myapp:latest" "$R" "$ID_LATEST"
pass

tour "docker push 123456789012.dkr.ecr.us-east-1.amazonaws.com/myapp:latest"
expect_rc 0
expect_out_re '^latest: digest: sha256:[0-9a-f]{64} size: [0-9]+$'
PUSHED=$(grep -oE 'sha256:[0-9a-f]{64}' "$OUT")
registry_digest "$ECR_REG" myapp latest "AWS:$ECR_PASSWORD"
expect_eq "what the ECR stand-in serves for myapp:latest" "$R" "$PUSHED"
pass

# ---------------------------------------------------------------------------- Security
section "Best Practices / Security Best Practices (tour Dockerfile #7)"
dockerfile 7 'FROM node:16.14.2-alpine'
printf '%s\n' "$R" >"$WORK/secure-app/Dockerfile"
CWD=$WORK/secure-app
SECRET_ARG="--secret id=api_key,src=$WORK/secrets/api_key.txt"
extra "the Dockerfile as written: its RUN ends in '&&' (the comment line is dropped), sh fails as in BuildKit" \
	"docker build $SECRET_ARG -t secure-app ."
expect_rc 1
expect_err ">>> RUN --mount=type=secret,id=api_key \\"
expect_err ">>>     API_KEY=\$(cat /run/secrets/api_key) && \\"
expect_err "Syntax error"
expect_err 'ERROR: failed to solve: process "/bin/sh -c API_KEY=$(cat /run/secrets/api_key) &&" did not complete successfully: exit code: 2'
expect_no_image secure-app
pass

# A command after the &&: a digest of the key, proving it was read without storing it.
sed 's|^    # Use API_KEY here$|&\n    printf "%s" "$API_KEY" \| sha256sum \| cut -c1-64 > /home/nextjs/api_key.sha256|' \
	"$WORK/secure-app/Dockerfile" >"$WORK/secure-app/Dockerfile.command"
grep -q 'api_key.sha256' "$WORK/secure-app/Dockerfile.command" || fail "could not add the command"
extra "a command after the &&: the secret is root's (uid 0, mode 0400, BuildKit's defaults), USER nextjs cannot read it" \
	"docker build $SECRET_ARG -f Dockerfile.command -t secure-app ."
expect_rc 1
expect_err "Permission denied"
expect_err_re 'did not complete successfully: exit code: 1$'
pass

sed 's|^RUN --mount=type=secret,id=api_key \\$|RUN --mount=type=secret,id=api_key,uid=1001 \\|' \
	"$WORK/secure-app/Dockerfile.command" >"$WORK/secure-app/Dockerfile.fixed"
grep -q 'uid=1001' "$WORK/secure-app/Dockerfile.fixed" || fail "could not add uid=1001"
extra "corrected: a command after the && and the secret mounted for nextjs (uid=1001)" \
	"docker build $SECRET_ARG -f Dockerfile.fixed -t secure-app ."
expect_rc 0
expect_cfg secure-app .Config.User '"nextjs"'
inside secure-app id
expect_eq "id" "$R" "uid=1001(nextjs) gid=65534(nogroup) groups=65534(nogroup)"
inside secure-app getent group nodejs
expect_eq "group nodejs (addgroup -g 1001 -S nodejs)" "$R" "nodejs:x:1001:"
inside secure-app cat /home/nextjs/api_key.sha256
expect_eq "sha256 of the key, written by the RUN (it read the secret)" "$R" "$SECRET_SHA"
absent_inside secure-app /run/secrets/api_key
! grep -qF "$SECRET" "$ERR" "$OUT" || fail "the build output shows the secret"
# The secret in no layer, config or manifest: every blob of `save`, decompressed.
"$BERTH" save -o "$WORK/secure-app.tar" secure-app 2>"$QERR" || fail "save: $(cat "$QERR")"
mkdir -p "$WORK/secure-app.saved"
tar -xf "$WORK/secure-app.tar" -C "$WORK/secure-app.saved"
n_blobs=0
while IFS= read -r -d '' f; do
	n_blobs=$((n_blobs + 1))
	case $(head -c4 "$f" | od -An -tx1 | tr -d ' ') in
	1f8b*) reader=(gzip -dc) ;;
	28b52ffd) reader=(zstd -dc) ;;
	*) reader=(cat) ;;
	esac
	if "${reader[@]}" "$f" | grep -qaF "$SECRET"; then fail "the secret is in ${f#"$WORK/"}"; fi
done < <(find "$WORK/secure-app.saved" -type f -print0)
((n_blobs > 3)) || fail "the saved archive has only $n_blobs files"
q history --no-trunc secure-app
! grep -qF "$SECRET" <<<"$R" || fail "history --no-trunc shows the secret"
grep -qF 'RUN /bin/sh -c API_KEY=$(cat /run/secrets/api_key) &&' <<<"$R" || fail "history lacks the RUN that read the secret: $R"
q inspect secure-app
! grep -qF "$SECRET" <<<"$R" || fail "inspect shows the secret"
note "the secret is in none of the $n_blobs files of 'berth save', nor in history --no-trunc or inspect"
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Image Optimization
section "Image Optimization (tour Dockerfile #8)"
CWD=$WORK/optimized
extra "build the tour's Image Optimization Dockerfile" "docker build -t optimized-app ."
expect_rc 0
expect_node_app optimized-app
expect_cfg optimized-app .Config.User '"node"'
inside optimized-app id -un
expect_eq "the user a container runs as" "$R" "node"
pass
CWD=$WORK

# ---------------------------------------------------------------------------- Troubleshooting
section "Troubleshooting"
CWD=$WORK/app
ID_LATEST_BEFORE=$ID_LATEST
tour "docker build --no-cache -t myapp ."
expect_rc 0
expect_no_cached
expect_myapp myapp:latest
image_id myapp:latest
[[ $R != "$ID_LATEST_BEFORE" ]] || fail "myapp:latest did not change"
pass
CWD=$WORK

tour "docker pull myapp:1.0  # Ensure image exists"
expect_rc 1
expect_err "myapp"
image_id myapp:1.0
expect_eq "the local myapp:1.0 (untouched)" "$R" "$ID_MYAPP"
pass

tour_pty "docker login  # Re-authenticate if needed" "$HUB_USER" "$HUB_PASSWORD"
expect_rc 0
expect_out "Login Succeeded"
config_json
jq -e --arg k "$HUB_KEY" '.auths[$k].auth' <<<"$R" >/dev/null || fail "no $HUB_KEY in config.json"
pass

# ---------------------------------------------------------------------------- Debugging
section "Debugging Images"
tour_pty "docker run -it myapp:1.0 /bin/bash" 'echo "inside $(id -un) $(pwd)"; exit'
expect_rc 0
grep -qa 'inside appuser /app' "$OUT" || fail "the shell did not answer 'inside appuser /app'"
pass

q ps -aq
CONTAINERS_BEFORE=$(wc -w <<<"$R")
tour "docker run --rm myapp:1.0 ls -la /app"
expect_rc 0
expect_out_re '^total [0-9]+'
expect_out_re '^-.* appuser +appuser +[0-9]+ .* app\.py$'
expect_out_re ' requirements\.txt$'
q ps -aq
expect_eq "containers after run --rm" "$(wc -w <<<"$R")" "$CONTAINERS_BEFORE"
pass

tour "docker history myapp:1.0"
expect_rc 0
head -n1 "$OUT" | grep -qE '^IMAGE +CREATED +CREATED BY +SIZE +COMMENT *$' || fail "header: $(head -n1 "$OUT")"
expect_eq "top row's IMAGE" "$(rows "$OUT" | head -n1 | awk '{ print $1 }')" "${ID_MYAPP:7:12}"
# BuildKit's history texts (CREATED BY is cut at 45 characters).
for s in 'CMD ["python3" "app.py"]' 'HEALTHCHECK &{["CMD-SHELL"' 'EXPOSE map[5000/tcp:{}]' 'USER appuser' \
	'useradd -m appuser' 'pip3 install' 'COPY . . # buildkit' 'LABEL maintainer=your-email@example.com' \
	'ENV FLASK_APP=app.py' 'WORKDIR /app'; do
	expect_out "$s"
done
pass

tour "docker inspect myapp:1.0"
expect_rc 0
expect_eq ".[0].Id" "$(jq -r '.[0].Id' "$OUT")" "$ID_MYAPP"
expect_eq ".[0].Config.User" "$(jq -r '.[0].Config.User' "$OUT")" "appuser"
expect_eq ".[0].Config.Healthcheck.Test" "$(jq -c '.[0].Config.Healthcheck.Test' "$OUT")" '["CMD-SHELL","curl -f http://localhost:5000/health || exit 1"]'
expect_eq ".[0].Config.Labels.maintainer" "$(jq -r '.[0].Config.Labels.maintainer' "$OUT")" "your-email@example.com"
pass

# ---------------------------------------------------------------------------- coverage
section "coverage"
N=$((N + 1)) CUR="every command of the tour ran" T_STEP=$EPOCHREALTIME RC=0
sort -u "$WORK/covered" >"$WORK/covered.sorted"
MISSING=$(sort -u "$WORK/tour-commands" | comm -23 - "$WORK/covered.sorted")
[[ -z $MISSING ]] || fail "not run:" "$MISSING"
pass

say "1..$N"
note "tour: $N steps in $(elapsed "$T_START")s, $TODO known bug(s)"
if ((TODO > 0)); then
	note "FAILED: $TODO step(s) fail because of berth bugs (not ok … # TODO bug)"
	exit 1
fi
