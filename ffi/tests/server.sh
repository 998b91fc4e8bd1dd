# Sourced by scripts/test-ffi: starts a registry-server on 127.0.0.1 with
# free ports for the C and Go tests. Sets registry_addr, server_pid and
# FFI_TEST_GROUP, or server_skip_reason when no server can run.
server_skip_reason=
FFI_TEST_GROUP=ffi-test

start_registry_server() {
  server_skip_reason="registry-server does not serve yet in this tree"
  return 1
}
