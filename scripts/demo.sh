#!/usr/bin/env bash
# berth's main job, end to end, on a fresh Debian 12 machine (the README's first command):
# install what is needed, build berth, start a local registry with offline stand-ins for the
# Docker Hub images, then build the tour's example app, run it, push it to the local registry
# and pull it back.
set -euo pipefail
cd "$(dirname "$0")/.."
# Bold headings on a terminal only, and never with NO_COLOR set.
if [[ -t 2 && -z ${NO_COLOR:-} ]]; then
	say() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
else
	say() { printf '\n==> %s\n' "$*" >&2; }
fi

if ! command -v cargo >/dev/null; then
	say "installing the Rust toolchain (rustup)"
	curl -fsSL https://sh.rustup.rs | sh -s -- -y --profile minimal
	# shellcheck disable=SC1091
	. "$HOME/.cargo/env"
fi
say "installing packages (registry, fixtures tools, peers)"
scripts/ci/install-deps.sh
say "building berth (release)"
cargo build --release -p berth
B=$PWD/target/release/berth

say "starting the local registry and building offline base images (python:3.9-slim stand-in)"
scripts/ci/registry.sh start plain
FIXTURES=all scripts/ci/fixtures.sh
# Docker Hub is unreachable here: make the local registry a docker.io mirror, as Docker's
# "registry-mirrors" does, so the tour's Dockerfile (FROM python:3.9-slim) works as written.
export BERTH_ROOT=${BERTH_ROOT:-/var/lib/berth-demo}
cfg=$(mktemp -d)
trap 'rm -rf "$cfg"' EXIT
printf '{"registry-mirrors": ["http://localhost:5000"]}\n' >"$cfg/registries.json"
export BERTH_REGISTRIES_CONFIG=$cfg/registries.json

say "berth build -t myapp:1.0 examples/tour-python"
"$B" build -t myapp:1.0 examples/tour-python
"$B" images myapp
"$B" history myapp:1.0

say "berth run --rm myapp:1.0 python app.py --check"
"$B" run --rm myapp:1.0 python app.py --check

say "berth push localhost:5000/demo/myapp:1.0"
"$B" tag myapp:1.0 localhost:5000/demo/myapp:1.0
"$B" push localhost:5000/demo/myapp:1.0

say "berth pull it back into an empty store, and run it again"
export BERTH_ROOT=$cfg/store
"$B" pull localhost:5000/demo/myapp:1.0
"$B" run --rm localhost:5000/demo/myapp:1.0 python app.py --check
say "done"
