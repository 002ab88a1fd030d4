#!/usr/bin/env bash
# Start and stop local CNCF distribution registries (Debian's docker-registry 2.8) for tests.
#
# Usage:
#   scripts/ci/registry.sh start [CONFIG...]   default CONFIG: plain; "all" = every config
#   scripts/ci/registry.sh stop  [CONFIG...|all]
#   scripts/ci/registry.sh restart [CONFIG...|all]
#   scripts/ci/registry.sh status              one line per config, "running"/"stopped"
#   scripts/ci/registry.sh env                 shell exports for tests: eval "$(… env)"
#   scripts/ci/registry.sh pki                 only (re)create certificates and htpasswd
#
# Configurations (all listen on 127.0.0.1 only, storage under $BERTH_CI_STATE/registry/NAME,
# delete enabled everywhere):
#   plain     :5000  HTTP, no auth
#   htpasswd  :5001  HTTP, basic auth, testuser / testpassword (bcrypt, htpasswd -Bbn)
#   tls       :5002  HTTPS with a certificate from our CA (SAN localhost, 127.0.0.1), no auth
#   token     :5003  HTTP, bearer-token auth (see "Token server hook" below)
#   tls-mtls  :5004  HTTPS that requires a client certificate signed by our CA
#
# Starting a running config is a no-op; start waits until /v2/ answers (200 or 401).
# Ports can be moved with BERTH_PORT_PLAIN, _HTPASSWD, _TLS, _TOKEN, _MTLS, _TOKEN_SERVER.
#
# Files (under $BERTH_CI_STATE, default /tmp/berth-ci):
#   pki/ca.crt ca.key                 test CA (10 years)
#   pki/server.crt server.key         localhost + 127.0.0.1
#   pki/client.crt client.key         client certificate for tls-mtls (CN berth-ci-client)
#   pki/token.crt token.key token.kid token signing key (EC P-256, PKCS#8 PEM; ES256), its
#                                     self-signed cert, and its libtrust key id
#   auth/htpasswd                     testuser:testpassword
#   certs.d/HOST:PORT/                docker/containers certs.d layout:
#       localhost:5002, 127.0.0.1:5002   ca.crt
#       localhost:5004, 127.0.0.1:5004   ca.crt client.cert client.key
#   registry/NAME/{config.yml,data/,registry.pid,registry.log}
#
# Token server hook (config "token", port 5003)
# ---------------------------------------------
# The registry is configured with
#   auth.token.realm          = http://127.0.0.1:5005/token   ($BERTH_TOKEN_REALM)
#   auth.token.service        = berth-ci-registry             ($BERTH_TOKEN_SERVICE)
#   auth.token.issuer         = berth-ci-token-issuer         ($BERTH_TOKEN_ISSUER)
#   auth.token.rootcertbundle = pki/token.crt
# "start token" also starts a token server in the background, the first of:
#   1. $BERTH_CI_TOKEN_SERVER, a command line run with bash -c (it may use the variables below);
#   2. an executable scripts/ci/token-server;
#   3. target/{debug,release}/berth-token-server (crate berth-testkit), run as
#        berth-token-server --listen $TOKEN_LISTEN --key $TOKEN_KEY --issuer $TOKEN_ISSUER
#            --service $TOKEN_SERVICE --user $TOKEN_USER
# with, in its environment,
#   TOKEN_LISTEN=127.0.0.1:5005  TOKEN_REALM  TOKEN_SERVICE  TOKEN_ISSUER
#   TOKEN_KEY=pki/token.key (EC P-256 PKCS#8 PEM)  TOKEN_CERT=pki/token.crt
#   TOKEN_KID=<libtrust key id>  TOKEN_USER=testuser:testpassword
#   TOKEN_HTPASSWD=auth/htpasswd (bcrypt, the same user)
# records its pid in registry/token/token-server.pid, logs to
# registry/token/token-server.log, and waits until the port accepts connections.
# The server must implement the Docker token protocol:
#   GET /token?service=S&scope=repository:NAME:pull,push[&scope=…]  with optional Basic auth
#   -> 200 {"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": RFC3339}
#   (POST /token with grant_type=password|refresh_token is the OAuth2 variant; optional.)
# JWT: header {"typ":"JWT","alg":"ES256","kid":TOKEN_KID} (distribution 2.8 finds the key
# by kid = libtrust fingerprint of the public key, precomputed in pki/token.kid; an "x5c"
# header holding TOKEN_CERT in base64 DER works too), claims iss=TOKEN_ISSUER,
# aud=TOKEN_SERVICE, sub=user, exp/nbf/iat, jti, and
# access=[{"type":"repository","name":NAME,"actions":["pull","push"]}].
# Without a token server the registry still starts and answers 401 with the Bearer challenge.
set -euo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REGISTRY_BIN=${BERTH_REGISTRY_BIN:-/usr/bin/docker-registry}
PKI=$BERTH_CI_STATE/pki
AUTH=$BERTH_CI_STATE/auth
CERTS_D=$BERTH_CI_STATE/certs.d
ALL_CONFIGS=(plain htpasswd tls token tls-mtls)
TOKEN_SERVICE=berth-ci-registry
TOKEN_ISSUER=berth-ci-token-issuer
TOKEN_REALM=http://127.0.0.1:$BERTH_PORT_TOKEN_SERVER/token
TEST_USER=testuser
TEST_PASSWORD=testpassword

port_of() {
	case $1 in
	plain) echo "$BERTH_PORT_PLAIN" ;;
	htpasswd) echo "$BERTH_PORT_HTPASSWD" ;;
	tls) echo "$BERTH_PORT_TLS" ;;
	token) echo "$BERTH_PORT_TOKEN" ;;
	tls-mtls) echo "$BERTH_PORT_MTLS" ;;
	*) ci_die "unknown registry config '$1' (known: ${ALL_CONFIGS[*]} all)" ;;
	esac
}

# libtrust key id (what distribution 2.8 matches a JWT "kid" against): base32 of the first
# 240 bits of sha256(DER SubjectPublicKeyInfo), in 12 colon-separated groups of 4.
libtrust_kid() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
		python3 -c 'import base64,hashlib,sys
k=base64.b32encode(hashlib.sha256(sys.stdin.buffer.read()).digest()[:30]).decode()
print(":".join(k[i:i+4] for i in range(0,48,4)))'
}

# Create the CA, server, client and token certificates and the htpasswd file once.
ensure_pki() {
	mkdir -p "$PKI" "$AUTH"
	if [[ ! -s $PKI/ca.crt || ! -s $PKI/server.crt || ! -s $PKI/client.crt ]]; then
		ci_log "creating test CA and certificates in $PKI"
		local tmp
		tmp=$(mktemp -d "$PKI/.tmp.XXXXXX")
		(
			cd "$tmp"
			openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
				-keyout ca.key -out ca.crt -subj "/CN=berth-ci test CA" \
				-addext basicConstraints=critical,CA:TRUE \
				-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
			openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr \
				-subj /CN=localhost 2>/dev/null
			printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
				'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
				'extendedKeyUsage=serverAuth' >server.ext
			openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-days 3650 -sha256 -extfile server.ext -out server.crt 2>/dev/null
			openssl req -newkey rsa:2048 -nodes -sha256 -keyout client.key -out client.csr \
				-subj /CN=berth-ci-client 2>/dev/null
			printf '%s\n' 'basicConstraints=CA:FALSE' \
				'keyUsage=critical,digitalSignature,keyEncipherment' \
				'extendedKeyUsage=clientAuth' >client.ext
			openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-days 3650 -sha256 -extfile client.ext -out client.crt 2>/dev/null
			rm -f ./*.csr ./*.ext ./*.srl
			chmod 600 ./*.key
		)
		mv -f "$tmp"/* "$PKI"/
		rmdir "$tmp"
	fi
	if [[ ! -s $PKI/token.crt || ! -s $PKI/token.kid ]] ||
		! openssl pkey -in "$PKI/token.key" -noout -text 2>/dev/null | grep -q prime256v1; then
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/token.key" 2>/dev/null
		openssl req -x509 -new -key "$PKI/token.key" -sha256 -days 3650 \
			-out "$PKI/token.crt" -subj "/CN=$TOKEN_ISSUER" 2>/dev/null
		chmod 600 "$PKI/token.key"
		libtrust_kid "$PKI/token.crt" >"$PKI/token.kid"
	fi
	if [[ ! -s $AUTH/htpasswd ]]; then
		htpasswd -Bbn "$TEST_USER" "$TEST_PASSWORD" >"$AUTH/htpasswd"
	fi
	local hp
	for hp in "localhost:$BERTH_PORT_TLS" "127.0.0.1:$BERTH_PORT_TLS"; do
		mkdir -p "$CERTS_D/$hp"
		cp -f "$PKI/ca.crt" "$CERTS_D/$hp/ca.crt"
	done
	for hp in "localhost:$BERTH_PORT_MTLS" "127.0.0.1:$BERTH_PORT_MTLS"; do
		mkdir -p "$CERTS_D/$hp"
		cp -f "$PKI/ca.crt" "$CERTS_D/$hp/ca.crt"
		cp -f "$PKI/client.crt" "$CERTS_D/$hp/client.cert"
		cp -f "$PKI/client.key" "$CERTS_D/$hp/client.key"
	done
}

write_config() {
	local name=$1 port dir
	port=$(port_of "$name")
	dir=$BERTH_CI_STATE/registry/$name
	mkdir -p "$dir/data"
	{
		cat <<EOF
# generated by scripts/ci/registry.sh; rewritten on every start
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: berth-ci-not-a-secret-$name
  headers:
    X-Content-Type-Options: [nosniff]
EOF
		case $name in
		tls)
			cat <<EOF
  tls:
    certificate: $PKI/server.crt
    key: $PKI/server.key
EOF
			;;
		tls-mtls)
			cat <<EOF
  tls:
    certificate: $PKI/server.crt
    key: $PKI/server.key
    clientcas:
      - $PKI/ca.crt
EOF
			;;
		htpasswd)
			cat <<EOF
auth:
  htpasswd:
    realm: berth-ci
    path: $AUTH/htpasswd
EOF
			;;
		token)
			cat <<EOF
auth:
  token:
    realm: $TOKEN_REALM
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $PKI/token.crt
EOF
			;;
		esac
	} >"$dir/config.yml"
}

# HTTP status of GET /v2/ on config NAME, or 000 when nothing answers.
probe() {
	local name=$1 port
	port=$(port_of "$name")
	local args=(-s -o /dev/null -w '%{http_code}' --max-time 2)
	case $name in
	tls) args+=(--cacert "$PKI/ca.crt" "https://localhost:$port/v2/") ;;
	tls-mtls) args+=(--cacert "$PKI/ca.crt" --cert "$PKI/client.crt" --key "$PKI/client.key"
		"https://localhost:$port/v2/") ;;
	*) args+=("http://127.0.0.1:$port/v2/") ;;
	esac
	curl "${args[@]}" 2>/dev/null || true
}

start_one() {
	local name=$1 port dir code i
	port=$(port_of "$name")
	dir=$BERTH_CI_STATE/registry/$name
	if ci_pid_alive "$dir/registry.pid" "$dir/config.yml"; then
		ci_log "registry $name already running (pid $(<"$dir/registry.pid"), port $port)"
	else
		if ci_port_busy "$port"; then
			ci_die "port $port (registry $name) is taken by $(ci_port_owner "$port"); stop it or set BERTH_PORT_*"
		fi
		ensure_pki
		write_config "$name"
		ci_start_bg "$dir/registry.pid" "$dir/registry.log" "$REGISTRY_BIN" serve "$dir/config.yml"
		for ((i = 0; i < 150; i++)); do
			code=$(probe "$name")
			[[ $code == 200 || $code == 401 ]] && break
			if ! ci_pid_alive "$dir/registry.pid" "$dir/config.yml"; then
				tail -n 20 "$dir/registry.log" >&2 || true
				ci_die "registry $name exited during start; log: $dir/registry.log"
			fi
			sleep 0.1
		done
		[[ $code == 200 || $code == 401 ]] ||
			ci_die "registry $name did not answer /v2/ on port $port within 15s; log: $dir/registry.log"
		ci_log "registry $name running (pid $(<"$dir/registry.pid"), port $port, /v2/ -> $code)"
	fi
	if [[ $name == token ]]; then
		start_token_server
	fi
}

start_token_server() {
	local dir=$BERTH_CI_STATE/registry/token cmd='' i
	if [[ -n ${BERTH_CI_TOKEN_SERVER:-} ]]; then
		cmd=$BERTH_CI_TOKEN_SERVER
	elif [[ -x $BERTH_CI_SCRIPTS/token-server ]]; then
		cmd=$BERTH_CI_SCRIPTS/token-server
	else
		local bin
		for bin in "$BERTH_CI_ROOT/target/debug/berth-token-server" "$BERTH_CI_ROOT/target/release/berth-token-server"; do
			if [[ -x $bin ]]; then
				# shellcheck disable=SC2016 # expanded by the bash -c that runs it
				cmd="$bin"' --listen "$TOKEN_LISTEN" --key "$TOKEN_KEY" --issuer "$TOKEN_ISSUER" --service "$TOKEN_SERVICE" --user "$TOKEN_USER"'
				break
			fi
		done
	fi
	if [[ -z $cmd ]]; then
		ci_log "no token server (set BERTH_CI_TOKEN_SERVER, add scripts/ci/token-server or build" \
			"berth-token-server); registry token answers 401 but no token can be obtained"
		return 0
	fi
	if [[ -s $dir/token-server.pid ]] && kill -0 "$(<"$dir/token-server.pid")" 2>/dev/null; then
		return 0
	fi
	ci_port_busy "$BERTH_PORT_TOKEN_SERVER" &&
		ci_die "port $BERTH_PORT_TOKEN_SERVER (token server) is taken by $(ci_port_owner "$BERTH_PORT_TOKEN_SERVER")"
	TOKEN_LISTEN=127.0.0.1:$BERTH_PORT_TOKEN_SERVER TOKEN_REALM=$TOKEN_REALM \
		TOKEN_SERVICE=$TOKEN_SERVICE TOKEN_ISSUER=$TOKEN_ISSUER \
		TOKEN_KEY=$PKI/token.key TOKEN_CERT=$PKI/token.crt TOKEN_KID=$(<"$PKI/token.kid") \
		TOKEN_HTPASSWD=$AUTH/htpasswd TOKEN_USER=$TEST_USER:$TEST_PASSWORD \
		ci_start_bg "$dir/token-server.pid" "$dir/token-server.log" bash -c "exec $cmd"
	for ((i = 0; i < 150; i++)); do
		ci_port_busy "$BERTH_PORT_TOKEN_SERVER" && break
		kill -0 "$(<"$dir/token-server.pid")" 2>/dev/null ||
			ci_die "token server exited during start; log: $dir/token-server.log"
		sleep 0.1
	done
	ci_port_busy "$BERTH_PORT_TOKEN_SERVER" ||
		ci_die "token server did not listen on $BERTH_PORT_TOKEN_SERVER within 15s; log: $dir/token-server.log"
	ci_log "token server running (pid $(<"$dir/token-server.pid"), port $BERTH_PORT_TOKEN_SERVER)"
}

stop_one() {
	local name=$1 dir
	port_of "$name" >/dev/null
	dir=$BERTH_CI_STATE/registry/$name
	if ci_pid_alive "$dir/registry.pid" "$dir/config.yml"; then
		ci_stop_pidfile "$dir/registry.pid" "$dir/config.yml"
		ci_log "registry $name stopped"
	else
		rm -f "$dir/registry.pid"
	fi
	if [[ $name == token && -s $dir/token-server.pid ]]; then
		# The token server is whatever command the hook ran; match on its pid alone.
		ci_stop_pidfile "$dir/token-server.pid" ""
		ci_log "token server stopped"
	fi
}

status() {
	local name dir port
	for name in "${ALL_CONFIGS[@]}"; do
		dir=$BERTH_CI_STATE/registry/$name
		port=$(port_of "$name")
		if ci_pid_alive "$dir/registry.pid" "$dir/config.yml"; then
			printf '%-9s running  pid %-7s port %s /v2/ -> %s\n' "$name" "$(<"$dir/registry.pid")" "$port" "$(probe "$name")"
		else
			printf '%-9s stopped  %-11s port %s\n' "$name" "" "$port"
		fi
	done
}

print_env() {
	cat <<EOF
export BERTH_CI_STATE=$BERTH_CI_STATE
export BERTH_REGISTRY_PLAIN=127.0.0.1:$BERTH_PORT_PLAIN
export BERTH_REGISTRY_HTPASSWD=127.0.0.1:$BERTH_PORT_HTPASSWD
export BERTH_REGISTRY_TLS=localhost:$BERTH_PORT_TLS
export BERTH_REGISTRY_TOKEN=127.0.0.1:$BERTH_PORT_TOKEN
export BERTH_REGISTRY_MTLS=localhost:$BERTH_PORT_MTLS
export BERTH_PORT_PLAIN=$BERTH_PORT_PLAIN
export BERTH_PORT_HTPASSWD=$BERTH_PORT_HTPASSWD
export BERTH_PORT_TLS=$BERTH_PORT_TLS
export BERTH_PORT_TOKEN=$BERTH_PORT_TOKEN
export BERTH_PORT_MTLS=$BERTH_PORT_MTLS
export BERTH_PORT_TOKEN_SERVER=$BERTH_PORT_TOKEN_SERVER
export BERTH_REGISTRY_USER=$TEST_USER
export BERTH_REGISTRY_PASSWORD=$TEST_PASSWORD
export BERTH_HTPASSWD_FILE=$AUTH/htpasswd
export BERTH_CERTS_D=$CERTS_D
export BERTH_CA_CERT=$PKI/ca.crt
export BERTH_CLIENT_CERT=$PKI/client.crt
export BERTH_CLIENT_KEY=$PKI/client.key
export BERTH_TOKEN_REALM=$TOKEN_REALM
export BERTH_TOKEN_SERVICE=$TOKEN_SERVICE
export BERTH_TOKEN_ISSUER=$TOKEN_ISSUER
export BERTH_TOKEN_KEY=$PKI/token.key
export BERTH_TOKEN_CERT=$PKI/token.crt
export BERTH_FIXTURES_OCI=$BERTH_CI_STATE/fixtures/oci
EOF
}

# Fill NAMES from the arguments, expanding "all"; dies on an unknown name.
expand_names() {
	local n
	NAMES=()
	for n in "$@"; do
		if [[ $n == all ]]; then
			NAMES+=("${ALL_CONFIGS[@]}")
		else
			port_of "$n" >/dev/null
			NAMES+=("$n")
		fi
	done
}

cmd=${1:-}
shift || true
case $cmd in start | stop | restart | pki) ci_lock registry ;; esac
case $cmd in
start)
	(($#)) || set -- plain
	expand_names "$@"
	for n in "${NAMES[@]}"; do start_one "$n"; done
	;;
stop)
	(($#)) || set -- all
	expand_names "$@"
	for n in "${NAMES[@]}"; do stop_one "$n"; done
	;;
restart)
	(($#)) || set -- plain
	expand_names "$@"
	for n in "${NAMES[@]}"; do stop_one "$n"; done
	for n in "${NAMES[@]}"; do start_one "$n"; done
	;;
status) status ;;
env) print_env ;;
pki) ensure_pki ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
