"""The messages a person reads for the common failures, one table: no registry, an
unknown group, an empty group (empty name, and a group whose last member left), a bad
address, and TLS mismatches. Each row names what the message must say: the addresses
tried, what to do, the group."""

from __future__ import annotations

import pathlib
import socket
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Tuple, Type

import pytest

from conftest import RegistryServer, wait_until
from registry_client import (
    Client,
    InvalidArgumentError,
    NotFoundError,
    Registration,
    RegistryError,
    UnavailableError,
)

# The core's hint after the addresses it could not connect to.
NOT_RUNNING = "is a registry-server running there? (its gRPC port is its --addr)"
EMPTIED = "py-errors-emptied"
UNKNOWN = "py-errors-unknown"


def dead_addr() -> str:
    """A loopback address nothing listens on: bound, noted, closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % s.getsockname()[1]


@dataclass
class World:
    """What the rows run against."""

    dead: Tuple[str, str]
    plain: RegistryServer
    tls: RegistryServer  # TLS only, asks for a client certificate
    certs: pathlib.Path


@pytest.fixture(scope="module")
def world(server_binary: str, tls_certs: pathlib.Path, tmp_path_factory) -> Iterator[World]:
    logs = tmp_path_factory.mktemp("messages")
    started: List[RegistryServer] = []
    try:
        started.append(RegistryServer(server_binary, logs, "messages-plain", []))
        tls_flags = [
            "--tls-cert", str(tls_certs / "server.pem"),
            "--tls-key", str(tls_certs / "server-key.pem"),
            "--tls-client-ca", str(tls_certs / "ca.pem"),
        ]
        started.append(RegistryServer(server_binary, logs, "messages-tls", [], tls_flags))
        plain = started[0]
        # A group that had a member, which then left.
        with quick([plain.grpc]) as c:
            reg = Registration(
                EMPTIED + "-1", EMPTIED, "127.0.0.1:9", bind="127.0.0.1:0", registries=[plain.gossip]
            )
            reg.start()
            try:
                wait_until(lambda: c.match(EMPTIED, "k"), what="the member of " + EMPTIED)
            finally:
                reg.stop()

            def empty_again() -> bool:
                try:
                    c.match(EMPTIED, "k")
                    return False
                except NotFoundError:
                    return True

            wait_until(empty_again, what=EMPTIED + " empty again")
        yield World((dead_addr(), dead_addr()), plain, started[1], tls_certs)
    finally:
        for srv in started:
            srv.stop()


def quick(registries, **options) -> Client:
    """A client of these registries alone that gives up fast."""
    return Client(registries, connect_timeout=0.5, request_timeout=2.0, discover_registries=False, **options)


def rpc(registries: Callable[[World], List[str]], tls: Optional[Callable[[World], dict]] = None,
        op: Callable[[Client], object] = lambda c: c.match("registry-group", "k")) -> Callable[[World], object]:
    """A row's call: `op` on a quick client of `registries(w)` with TLS options `tls(w)`."""

    def call(w: World) -> object:
        with quick(registries(w), **(tls(w) if tls else {})) as c:
            return op(c)

    return call


def view_match(c: Client) -> object:
    with c.group(UNKNOWN) as view:
        return view.match("k")


@dataclass
class Row:
    name: str
    call: Callable[[World], object]
    error: Type[RegistryError]
    # Substrings of the message; {dead1}, {dead2}, {plain} and {tls} stand for addresses.
    want: List[str]
    absent: Tuple[str, ...] = ()


DEAD = lambda w: list(w.dead)  # noqa: E731
PLAIN = lambda w: [w.plain.grpc]  # noqa: E731
TLS = lambda w: [w.tls.grpc]  # noqa: E731

ROWS = [
    Row(
        "no registry: match",
        rpc(DEAD, op=lambda c: c.match("web", "k")),
        UnavailableError,
        ["no registry reachable: tried {dead1} (connection refused), {dead2} (connection refused)", NOT_RUNNING],
        ("transport error", "tcp connect"),
    ),
    Row(
        "no registry: local view",
        rpc(DEAD, op=lambda c: c.group("web")),
        UnavailableError,
        ['no registry sent a snapshot of group "web"', "tried {dead1} (connection refused)", NOT_RUNNING],
    ),
    Row(
        "empty group name",
        rpc(DEAD, op=lambda c: c.match("", "k")),
        InvalidArgumentError,
        ["group is empty: a name is required"],
    ),
    Row(
        "bad address: no port",
        lambda w: Client(["127.0.0.1"]),
        InvalidArgumentError,
        ['bad registry address "127.0.0.1": no port; expected host:port, e.g. 127.0.0.1:9800'],
    ),
    Row(
        "bad address: port out of range",
        lambda w: Client(["127.0.0.1:99999"]),
        InvalidArgumentError,
        ['bad registry address "127.0.0.1:99999": port "99999" is not 1 to 65535', "expected host:port"],
    ),
    Row(
        "unknown group",
        rpc(PLAIN, op=lambda c: c.match(UNKNOWN, "k")),
        NotFoundError,
        ['group "%s" has no members: none has registered' % UNKNOWN],
    ),
    Row(
        "empty group (last member left)",
        rpc(PLAIN, op=lambda c: c.match(EMPTIED, "k")),
        NotFoundError,
        ['group "%s" has no members: its last member left' % EMPTIED],
    ),
    Row(
        "empty group: local view match",
        rpc(PLAIN, op=view_match),
        NotFoundError,
        ['group "%s" has no members' % UNKNOWN],
    ),
    Row(
        "TLS mismatch: plain client, TLS registry",
        rpc(TLS),
        UnavailableError,
        ["no registry reachable: tried {tls} (", "does the registry serve TLS only? then the client needs its CA"],
        (NOT_RUNNING,),
    ),
    Row(
        "TLS mismatch: CA that did not sign it",
        rpc(TLS, lambda w: dict(tls_ca=w.certs / "other-ca.pem", tls_cert=w.certs / "client.pem",
                                tls_key=w.certs / "client-key.pem")),
        UnavailableError,
        ["tried https://{tls} (TLS: invalid peer certificate: UnknownIssuer", "not signed by the client's TLS CA"],
        (NOT_RUNNING,),
    ),
    Row(
        "TLS mismatch: no client certificate",
        rpc(TLS, lambda w: dict(tls_ca=w.certs / "ca.pem")),
        UnavailableError,
        ["no registry reachable: tried https://{tls} (", "client certificate"],
        (NOT_RUNNING,),
    ),
    Row(
        "TLS mismatch: TLS client, plain registry",
        rpc(PLAIN, lambda w: dict(tls_ca=w.certs / "ca.pem")),
        UnavailableError,
        ["tried https://{plain} (TLS:", "does the registry serve plain text? then the client needs no TLS settings"],
        (NOT_RUNNING,),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_the_message_says_what_was_tried_and_what_to_do(world: World, row: Row):
    addrs = dict(dead1=world.dead[0], dead2=world.dead[1], plain=world.plain.grpc, tls=world.tls.grpc)
    with pytest.raises(row.error) as caught:
        row.call(world)
    text = str(caught.value)
    for want in row.want:
        assert want.format(**addrs) in text
    for absent in row.absent:
        assert absent not in text
    # The class says the kind; the message does not repeat it.
    assert not text.startswith(("unavailable:", "not found:", "invalid argument:")), text
