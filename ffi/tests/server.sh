# Sourced by scripts/test-ffi: builds registry-server and starts one on
# 127.0.0.1 with free ports for the C and Go tests. On success sets
# registry_addr (gRPC host:port), registry_gossip (gossip host:port) and
# server_pid, and exports REGISTRY_GOSSIP_ADDR; otherwise sets
# server_skip_reason. The caller stops the server (kill $server_pid).
server_skip_reason=
FFI_TEST_GROUP=ffi-example

# Prints n free loopback ports (TCP and UDP both free).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close(); continue
    held += [t, u]
    ports.append(port)
print(" ".join(map(str, ports)))
PY
}

start_registry_server() {
  if ! cargo build -p registry-server --locked >"$out/server-build.log" 2>&1; then
    server_skip_reason="registry-server does not build (see $out/server-build.log)"
    return 1
  fi
  local bin=$root/target/debug/registry-server
  if [ ! -x "$bin" ]; then server_skip_reason="no $bin"; return 1; fi
  if ! command -v python3 >/dev/null 2>&1; then server_skip_reason="python3 is needed to find free ports"; return 1; fi
  local grpc http gossip
  read -r grpc http gossip < <(free_ports 3)
  RUST_LOG=${RUST_LOG:-warn} "$bin" --id ffi-test-registry \
    --addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" --bind "127.0.0.1:$gossip" \
    >"$out/server.log" 2>&1 &
  server_pid=$!
  # Ready when the gRPC port accepts connections (at most 20 s).
  for _ in $(seq 1 200); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      server_skip_reason="registry-server exited at start (see $out/server.log)"
      server_pid=
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$grpc") 2>/dev/null; then
      registry_addr=127.0.0.1:$grpc
      registry_gossip=127.0.0.1:$gossip
      export REGISTRY_GOSSIP_ADDR=$registry_gossip
      return 0
    fi
    sleep 0.1
  done
  server_skip_reason="registry-server did not listen within 20 s (see $out/server.log)"
  kill "$server_pid" 2>/dev/null || true
  server_pid=
  return 1
}
