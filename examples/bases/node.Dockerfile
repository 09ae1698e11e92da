# Local stand-ins for the Docker Hub `node:18` (with npm) and `node:18-slim` (runtime only) images,
# built by lighter itself from the debootstrap base. Both have the `node` user (uid 1000) as upstream.
# This machine reaches the npm registry through a TLS-intercepting proxy, so the builder image trusts
# the host's CA bundle, given as a named context: `--build-context hostca=/etc/ssl/certs`.
FROM debian:bookworm AS slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node

FROM slim AS full
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
COPY --from=hostca ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
