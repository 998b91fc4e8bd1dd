#!/usr/bin/env bash
# Lookup throughput from C and Go, one thread, 100 members: the standalone
# ring, and the local view of a group on a real registry-server (started
# here on free loopback ports) that 100 services registered in. Uses the
# release libregistry. Prints the figures for BENCHMARKS.md.
#   ffi/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/target/ffi-bench
mkdir -p "$out"
cargo build -p registry-ffi --release --locked
lib=$root/target/release
# registry.pc for cgo, and the SONAME link the C program loads.
PKG_CONFIG_PATH=$("$root/scripts/pkgconfig-dev" "$lib" "$out/pkgconfig")
export PKG_CONFIG_PATH
server_pid=
members_pid=
cleanup() {
  for p in $members_pid $server_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# shellcheck source=/dev/null
. "$root/ffi/tests/server.sh"
start_registry_server || { echo "no registry-server: $server_skip_reason" >&2; exit 1; }

cc -std=c11 -D_DEFAULT_SOURCE -O2 -I include ffi/bench/bench_match.c -L "$lib" -lregistry -o "$out/bench_match"
export LD_LIBRARY_PATH=$lib
# 100 members, registered from a separate process.
"$out/bench_match" members "$registry_gossip" bench 100 &
members_pid=$!
echo "== C"
"$out/bench_match" ring
"$out/bench_match" view "$registry_addr" bench 100

echo "== Go"
cd ffi/go
REGISTRY_ADDR=$registry_addr REGISTRY_GOSSIP_ADDR= REGISTRY_BENCH_GROUP=bench \
  REGISTRY_BENCH_MEMBERS=100 go test -run '^$' -bench 'RingLocate|ViewMatch' -benchtime 2s -count 3

echo "== Go: from a membership change to the view's Changes channel"
REGISTRY_ADDR=$registry_addr REGISTRY_GOSSIP_ADDR=$registry_gossip \
  go test -run '^$' -bench ChangeLatency -benchtime 40x -count 3
