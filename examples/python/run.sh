#!/usr/bin/env bash
# Runs the Python examples end to end: one registry-server on free loopback
# ports, two instances of service.py, then client.py. Everything it starts
# is stopped on exit.
#
#   examples/python/run.sh [python]     (default: python3 with registry_client installed)
# REGISTRY_SERVER_BIN overrides the server binary (default: cargo build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${1:-python3}
server_bin=${REGISTRY_SERVER_BIN:-}
if [ -z "$server_bin" ]; then
  (cd "$root" && cargo build --quiet -p registry-server --bin registry-server)
  server_bin=${CARGO_TARGET_DIR:-$root/target}/debug/registry-server
fi

free_port() { # $1: tcp|udp
  "$py" -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"
}
grpc=$(free_port tcp); http=$(free_port tcp); gossip=$(free_port udp)
logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap cleanup EXIT

"$server_bin" --id example-registry --addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" \
  --bind "127.0.0.1:$gossip" >"$logs/registry.log" 2>&1 &
pids+=($!)
for i in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$grpc") 2>/dev/null && break
  sleep 0.1
done

for id in user-1 user-2; do
  "$py" "$here/service.py" --id "$id" --registry "127.0.0.1:$gossip" >"$logs/$id.log" 2>&1 &
  pids+=($!)
done

if ! out=$("$py" "$here/client.py" --registry "127.0.0.1:$grpc" --expect 2); then
  echo "client.py failed; logs:" >&2
  tail -n 20 "$logs"/*.log >&2
  exit 1
fi
echo "$out"
# The output must name both instances, and the 1000 users must be split between them.
grep -q "user-1 " <<<"$out" && grep -q "user-2 " <<<"$out" && grep -q "user-42 -> user-" <<<"$out" || {
  echo "client.py output is missing an instance" >&2
  exit 1
}
