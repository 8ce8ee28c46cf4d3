#!/usr/bin/env bash
# Builds a nats-server whose wall clock honours libfaketime's FAKETIME offset, for
# scripts/test-at-offset.sh. nats-server is written in Go, and Go reads the clock through the
# vDSO rather than libc, so libfaketime's LD_PRELOAD cannot move it; this build adds the offset
# inside Go's time.Now() instead (shift.go.txt), in a copy of the Go toolchain, and compiles
# the server from Debian's source package (the same 2.9 release as Debian's nats-server).
# Prints the binary's path. Needs Debian's golang-go and golang-github-nats-io-nats-server-dev
# (installed with apt-get when missing and running as root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${FASTGPU_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fastgpu}/shifted-nats-server"
binary="$cache/nats-server"
stamp="$(sha256sum "$here/shift.go.txt" "$here/build.sh" | sha256sum | cut -c1-16)"
if [ -x "$binary" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ]; then echo "$binary"; exit 0; fi

source_dir=/usr/share/gocode/src/github.com/nats-io/nats-server
if ! command -v go >/dev/null || [ ! -d "$source_dir" ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq golang-go golang-github-nats-io-nats-server-dev || { apt-get update -qq && apt-get install -y -qq golang-go golang-github-nats-io-nats-server-dev; }) >&2
  else
    echo "needs: apt-get install -y golang-go golang-github-nats-io-nats-server-dev" >&2; exit 2
  fi
fi

mkdir -p "$cache"
goroot="$cache/goroot"
rm -rf "$goroot"
cp -rL "$(go env GOROOT)" "$goroot"
chmod -R u+w "$goroot"
cp "$here/shift.go.txt" "$goroot/src/time/shift.go"
grep -q 'sec, nsec, mono := now()$' "$goroot/src/time/time.go" || { echo "Go's time.Now() has another shape: update build.sh" >&2; exit 2; }
sed -i 's/^\(\tsec, nsec, mono := now()\)$/\1\n\tsec += shiftedSeconds()/' "$goroot/src/time/time.go"
GOROOT="$goroot" GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$cache/gocache" \
  "$goroot/bin/go" build -o "$binary" github.com/nats-io/nats-server >&2
rm -rf "$goroot"
echo "$stamp" >"$cache/stamp"
echo "$binary"
