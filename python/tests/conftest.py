"""Fixtures: real registry-server processes on loopback, always stopped."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import time
from typing import Callable, Iterator, List, Optional

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS just handed out on 127.0.0.1 (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond: Callable[[], object], timeout: float = 15.0, what: str = "condition"):
    """Polls ``cond`` until it returns something truthy; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - remembered for the failure message
            last_exc = e
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc!r}")


class RegistryServer:
    """One registry-server process: gRPC, HTTP and gossip on free loopback ports."""

    def __init__(
        self, binary: str, log_dir: pathlib.Path, name: str, join: List[str], extra: Optional[List[str]] = None
    ):
        self.name = name
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.gossip_port = free_port(socket.SOCK_DGRAM)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        args = [
            binary,
            "--id", name,
            "--addr", f"127.0.0.1:{self.grpc_port}",
            "--http-addr", f"127.0.0.1:{self.http_port}",
            "--bind", f"127.0.0.1:{self.gossip_port}",
        ]
        if join:
            args += ["--registries", ",".join(join)]
        args += extra or []
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()

    @property
    def grpc(self) -> str:
        """gRPC address for Client."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def gossip(self) -> str:
        """Gossip address for Registration(registries=...)."""
        return f"127.0.0.1:{self.gossip_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry-server exited with {self.proc.returncode}:\n{self.log()}")
            # "ready": listening, and (with --registries) synced with the cluster.
            if "daemon: ready " in self.log():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"registry-server was not ready within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """Stops the process (SIGTERM, then SIGKILL); safe to call twice."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def kill(self) -> None:
        """Kills the process at once (a crash, as far as the cluster knows)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def server_binary() -> str:
    """Path of registry-server: $REGISTRY_SERVER_BIN, else built once with cargo."""
    path = os.environ.get("REGISTRY_SERVER_BIN")
    if not path:
        target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        subprocess.run(
            ["cargo", "build", "-p", "registry-server", "--bin", "registry-server"],
            cwd=ROOT,
            check=True,
        )
        path = str(target / "debug" / "registry-server")
    return path


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A directory of throw-away test certificates (ca.pem, server.pem, server-key.pem,
    client.pem, client-key.pem, other-ca.pem, other-client.pem, other-client-key.pem),
    written by $REGISTRY_TLS_CERTS_BIN, else by the example built once with cargo."""
    path = os.environ.get("REGISTRY_TLS_CERTS_BIN")
    if not path:
        target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        subprocess.run(
            ["cargo", "build", "-p", "registry-server", "--example", "tls-test-certs"],
            cwd=ROOT,
            check=True,
        )
        path = str(target / "debug" / "examples" / "tls-test-certs")
    out = tmp_path_factory.mktemp("tls")
    subprocess.run([path, str(out)], check=True)
    return out


@pytest.fixture
def start_server(server_binary: str, tmp_path: pathlib.Path) -> Iterator[Callable[..., RegistryServer]]:
    """Factory: start_server(join=[gossip addrs], extra=[more flags]) -> RegistryServer; all stopped at teardown."""
    started: List[RegistryServer] = []

    def start(join: Optional[List[str]] = None, extra: Optional[List[str]] = None) -> RegistryServer:
        srv = RegistryServer(server_binary, tmp_path, f"registry-{len(started) + 1}", join or [], extra)
        started.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def server(start_server) -> RegistryServer:
    """One running registry-server."""
    return start_server()
