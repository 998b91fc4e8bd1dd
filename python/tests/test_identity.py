"""One id, one live holder, against a real registry-server process: a second
registration of a live id raises AlreadyExistsError naming the holder, in
another group and in the same one, and the holder keeps its place."""

from __future__ import annotations

import pytest

from conftest import wait_until
from registry_client import AlreadyExistsError, Client, Registration


def addrs(client, group):
    return [s.addr for s in client.members(group)]


def test_a_second_registration_of_a_live_id_is_refused(server):
    holder = Registration("dup", "web", "127.0.0.1:8181", bind="127.0.0.1:0", registries=[server.gossip])
    holder.start()
    try:
        with Client([server.grpc]) as client:
            wait_until(lambda: addrs(client, "web") == ["127.0.0.1:8181"], what="the holder to be listed")
            for group in ("api", "web"):
                newcomer = Registration("dup", group, "127.0.0.1:8282", bind="127.0.0.1:0", registries=[server.gossip])
                with pytest.raises(AlreadyExistsError, match="already registered by a live member at 127.0.0.1:8181"):
                    newcomer.start()
                assert not newcomer.running
                assert addrs(client, "web") == ["127.0.0.1:8181"]
    finally:
        holder.stop()
