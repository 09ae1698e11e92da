# Local stand-in for the Docker Hub `golang:1.19` image (Debian's Go toolchain on bookworm), built by
# lighter itself from the debootstrap base, since no registry is reachable here.
FROM debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends golang-go ca-certificates git \
 && rm -rf /var/lib/apt/lists/*
ENV GOPATH=/go GOFLAGS=-mod=mod GOTOOLCHAIN=local
WORKDIR /go
