#!/usr/bin/env bash
# The main job: build the multi-stage Go example with lighter, run it, and show where the bytes went
# (single-stage vs multi-stage sizes). Installs what it needs (Debian packages via apt-get), makes the
# local base images once (no registry is reachable) and serves them from a local registry as docker.io's
# mirror, and keeps lighter's store in $LIGHTER_ROOT
# (default: a demo store under /var/tmp that is reused between runs, so the base images stay cached).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-peers.sh
CACHE=$(bash scripts/make-bases.sh)
export LIGHTER_ROOT=${LIGHTER_ROOT:-/var/tmp/lighter-demo}

cargo build --release --quiet -p lighter
L="$PWD/target/release/lighter"

# Base images, made locally in a store of their own (no registry is reachable): debian:bookworm from
# debootstrap, golang:1.19 built by lighter itself.
BASES=${LIGHTER_DEMO_BASES:-/var/tmp/lighter-demo-bases}
LB() { LIGHTER_ROOT="$BASES" "$L" "$@"; }
LB inspect debian:bookworm >/dev/null 2>&1 || LB import "$CACHE/bookworm.tar" debian:bookworm
LB inspect golang:1.19 >/dev/null 2>&1 || LB build -t golang:1.19 -f examples/bases/golang.Dockerfile examples/bases

# Served as Docker Hub would serve them: a local registry (Debian's docker-registry on 127.0.0.1)
# configured as docker.io's mirror, so `FROM golang:1.19` pulls docker.io/library/golang:1.19.
source scripts/lib/registry.sh
REG=$(mktemp -d /tmp/lighter-demo-registry.XXXXXX)
trap 'stop_registries "$REG"; rm -rf "$REG"' EXIT
PORT=$(start_registry "$REG" 5000)
LB tag golang:1.19 "127.0.0.1:$PORT/library/golang:1.19"
LB push -q "127.0.0.1:$PORT/library/golang:1.19" >/dev/null
printf '[registry."docker.io"]\nmirrors = ["127.0.0.1:%s"]\n' "$PORT" > "$REG/registries.toml"
export LIGHTER_REGISTRY_CONFIG="$REG/registries.toml"

echo "== multi-stage build (examples/go/Dockerfile; --pull checks the mirror for golang:1.19)"
"$L" build --pull -t hello-go:multi examples/go
echo "== single-stage build (examples/go/Dockerfile.bloat)"
"$L" build -t hello-go:bloat -f examples/go/Dockerfile.bloat examples/go

echo "== run it"
"$L" run --rm hello-go:multi -selftest

echo "== sizes"
"$L" images hello-go
"$L" diff hello-go:bloat hello-go:multi --top 5
