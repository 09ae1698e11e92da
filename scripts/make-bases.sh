#!/usr/bin/env bash
# Makes the base-image root filesystems the tests and examples build on, since no registry is reachable:
#   busybox.tar   - Debian's static busybox with its applet links (a tiny base with a shell)
#   bookworm.tar  - `debootstrap --variant=minbase bookworm` plus the host's CA bundle (the TLS proxy)
# They are cached outside the repository in $LIGHTER_TEST_CACHE (default /var/cache/lighter-test) and
# made only when missing. The examples test adds the golang/node stand-ins it builds with lighter
# (standin-*.tar) to the same folder. Arguments name which to make (default: both). Prints the cache directory.
set -euo pipefail

CACHE=${LIGHTER_TEST_CACHE:-/var/cache/lighter-test}
mkdir -p "$CACHE"
WANT=${*:-busybox bookworm}

if [[ " $WANT " == *" busybox "* ]] && [ ! -s "$CACHE/busybox.tar" ]; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/tmp" "$tmp/root" "$tmp/var" "$tmp/usr/bin" "$tmp/home"
  chmod 1777 "$tmp/tmp"
  cp /bin/busybox "$tmp/bin/busybox"
  for a in $("$tmp/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$tmp/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nnode:x:1000:1000::/home/node:/bin/sh\n' > "$tmp/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nnode:x:1000:\n' > "$tmp/etc/group"
  tar --numeric-owner --sort=name --mtime=@0 -C "$tmp" -cf "$CACHE/busybox.tar.tmp" .
  mv "$CACHE/busybox.tar.tmp" "$CACHE/busybox.tar"
  rm -rf "$tmp"
fi

if [[ " $WANT " == *" bookworm "* ]] && [ ! -s "$CACHE/bookworm.tar" ]; then
  root="$CACHE/bookworm-rootfs"
  if [ ! -x "$root/bin/sh" ] || [ ! -e "$root/.complete" ]; then
    rm -rf "$root"
    echo "make-bases: debootstrap minbase bookworm (a few minutes, once)" >&2
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1
    touch "$root/.complete"
  fi
  mkdir -p "$root/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar --numeric-owner --xattrs --sort=name --exclude=./.complete --exclude=./proc/* --exclude=./sys/* \
      -C "$root" -cf "$CACHE/bookworm.tar.tmp" .
  mv "$CACHE/bookworm.tar.tmp" "$CACHE/bookworm.tar"
fi
echo "$CACHE"
