"""Against real registry-server processes: register from Python, discover, stop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from conftest import wait_until
from registry_client import (
    AsyncClient,
    Client,
    InvalidArgumentError,
    NotFoundError,
    Registration,
    Ring,
    Service,
    UnavailableError,
)

GROUP = "user-service"


def ids(services):
    return sorted(s.id for s in services)


@pytest.fixture
def client(server):
    with Client([server.grpc]) as c:
        yield c


@pytest.fixture
def two_services(server):
    """Two instances of GROUP registered from Python, stopped at teardown."""
    regs = [
        Registration(
            "user-%d" % i,
            GROUP,
            "127.0.0.1:%d" % (8080 + i),
            bind="127.0.0.1:0",
            registries=[server.gossip],
            weight=i,
            tags={"zone": "z%d" % i},
        )
        for i in (1, 2)
    ]
    for r in regs:
        r.start()
    try:
        yield regs
    finally:
        for r in regs:
            r.stop()


def test_register_two_services_then_match_and_members(client, two_services):
    members = wait_until(
        lambda: len(client.members(GROUP)) == 2 and client.members(GROUP),
        what="both services to be members",
    )
    assert ids(members) == ["user-1", "user-2"]
    by_id = {s.id: s for s in members}
    assert by_id["user-2"] == Service(
        "user-2", GROUP, "127.0.0.1:8082", weight=2, tags={"zone": "z2"}
    )
    assert all(r.joined for r in two_services)

    owner = client.match(GROUP, "user-42")
    assert owner.id in by_id and owner.group == GROUP
    both = client.match_n(GROUP, "user-42", 2)
    assert both[0] == owner and ids(both) == ["user-1", "user-2"]
    assert client.match_n(GROUP, "user-42", 10) == both

    info = {g.name: g for g in client.groups()}
    assert info[GROUP].members == 2
    assert info[GROUP].version >= 1
    assert info[GROUP].checksum == Ring([(s.id, s.weight) for s in members]).checksum


def test_local_view_gives_the_servers_answers(client, two_services):
    view = client.group(GROUP)
    wait_until(lambda: len(view.members()) == 2, what="the view to see both services")
    assert view.connected
    assert view.name == GROUP
    for i in range(1000):
        key = "user-%d" % i
        assert view.match(key) == client.match(GROUP, key), key
    for i in range(100):
        key = "order-%d" % i
        assert view.match_n(key, 2) == client.match_n(GROUP, key, 2)
    assert view.members() == client.members(GROUP)
    # The view keeps the checksum of the ring it built: the server's.
    assert view.checksum == {g.name: g.checksum for g in client.groups()}[GROUP]
    assert view.checksum == Ring([(s.id, s.weight) for s in view.members()]).checksum


def test_standalone_ring_agrees_with_the_server(client, two_services):
    members = wait_until(lambda: len(client.members(GROUP)) == 2 and client.members(GROUP), what="both services")
    ring = Ring([(s.id, s.weight) for s in members])
    for i in range(500):
        key = "user-%d" % i
        assert ring.locate(key) == client.match(GROUP, key).id, key
    assert ring.locate_n("user-7", 2) == [s.id for s in client.match_n(GROUP, "user-7", 2)]


def test_stop_removes_the_member_and_the_view_follows(client, two_services):
    view = client.group(GROUP)
    wait_until(lambda: len(view.members()) == 2, what="both services in the view")
    before = view.version
    checksum_before = view.checksum
    assert checksum_before == Ring([("user-1", 1), ("user-2", 2)]).checksum

    two_services[0].stop()
    assert not two_services[0].running
    wait_until(lambda: ids(client.members(GROUP)) == ["user-2"], what="user-1 to leave")
    wait_until(lambda: ids(view.members()) == ["user-2"], what="the view to drop user-1")
    assert view.version > before
    assert view.checksum == Ring([("user-2", 2)]).checksum != checksum_before
    server_version = {g.name: g.version for g in client.groups()}[GROUP]
    wait_until(lambda: view.version == server_version, what="the view to reach the server's version")
    for i in range(100):
        assert view.match("k%d" % i).id == "user-2"


def test_update_is_seen_by_clients(client, two_services):
    wait_until(lambda: len(client.members(GROUP)) == 2, what="both services")
    two_services[1].update(weight=5, tags={"zone": "moved"})
    assert two_services[1].service.weight == 5

    def updated():
        s = {m.id: m for m in client.members(GROUP)}["user-2"]
        return s.weight == 5 and s.tags == {"zone": "moved"}

    wait_until(updated, what="the update to reach the registry")
    with pytest.raises(InvalidArgumentError, match="weight"):
        two_services[1].update(weight=0)
    assert two_services[1].service.weight == 5


def test_wait_for_change_sees_a_join(client, server):
    view = client.group("late-group")
    assert view.members() == []
    with pytest.raises(NotFoundError):
        view.match("k")
    # Wait from before the join: the call blocks until the join's snapshot
    # (one that came between calls is the next test's case).
    seen = []
    waiter = threading.Thread(target=lambda: seen.append(view.wait_for_change(timeout=15.0)))
    waiter.start()
    time.sleep(0.2)
    with Registration("late-1", "late-group", "127.0.0.1:9", "127.0.0.1:0", registries=server.gossip):
        waiter.join()
        assert seen == [True]
        wait_until(lambda: view.members(), what="a snapshot with late-1")
        assert view.match("k").id == "late-1"
    wait_until(lambda: view.members() == [], what="late-1 to leave")
    # The leave's snapshot arrived between calls: the next call reports it
    # at once, exactly once.
    assert view.wait_for_change(timeout=0.05) is True
    assert view.wait_for_change(timeout=0.05) is False


def test_wait_for_change_reports_a_snapshot_that_came_between_calls(client, server):
    view = client.group("between-group")
    with Registration("between-1", "between-group", "127.0.0.1:9", "127.0.0.1:0", registries=server.gossip):
        # Not waiting while it arrives: the join must not be lost.
        wait_until(lambda: view.members(), what="between-1 in the view")
        assert view.wait_for_change(timeout=0.05) is True
        assert view.wait_for_change(timeout=0.05) is False


def test_unknown_group_is_not_found(client, server):
    with pytest.raises(NotFoundError):
        client.match("no-such-group", "k")
    assert client.members("no-such-group") == []


def test_client_close_closes_its_views(client, two_services):
    view = client.group(GROUP)
    client.close()
    with pytest.raises(UnavailableError):
        view.match("k")
    with pytest.raises(UnavailableError):
        client.members(GROUP)


def test_failover_to_a_second_registry(start_server):
    first = start_server()
    second = start_server(join=[first.gossip])
    with Registration("api-1", "api", "127.0.0.1:7000", "127.0.0.1:0", registries=[first.gossip, second.gossip]):
        with Client([first.grpc, second.grpc], request_timeout=1.0) as c:
            wait_until(lambda: ids(c.members("api")) == ["api-1"], what="api-1 on the first registry")
            view = c.group("api")
            first.kill()
            for i in range(20):
                assert c.match("api", "k%d" % i).id == "api-1"
            # The view keeps answering from its last snapshot, then resubscribes.
            assert view.match("k").id == "api-1"
            wait_until(lambda: view.connected, what="the view to resubscribe")


def test_a_view_reports_staleness_and_can_refuse_past_a_bound(start_server):
    server = start_server()
    bound = 0.6
    with Registration("stale-1", "stale", "127.0.0.1:7100", "127.0.0.1:0", registries=[server.gossip]):
        with Client([server.grpc], discover_registries=False) as free_client, Client(
            [server.grpc], discover_registries=False, max_staleness=bound
        ) as bounded_client:
            free, bounded = free_client.group("stale"), bounded_client.group("stale")
            wait_until(lambda: len(free.members()) == 1 and len(bounded.members()) == 1, what="stale-1 in both views")
            assert bounded.connected and bounded.staleness == 0.0
            assert bounded.match("k").id == "stale-1"
            server.kill()
            wait_until(lambda: not free.connected and not bounded.connected, what="the views to notice")
            noticed = bounded.staleness
            assert noticed < bound
            assert bounded.match("k").id == "stale-1", "within the bound"
            time.sleep(bound + 0.1 - noticed)
            assert bounded.staleness > bound
            for lookup in (lambda: bounded.match("k"), lambda: bounded.match_n("k", 1)):
                with pytest.raises(UnavailableError, match="max_staleness"):
                    lookup()
            assert [s.id for s in bounded.members()] == ["stale-1"], "members stay readable"
            assert free.match("k").id == "stale-1", "no bound: still answers"
            assert free.staleness >= bound


def test_view_changes_reach_a_callback_and_an_async_iterator_once_each(server):
    with Registration("chg-1", "chg", "127.0.0.1:7201", "127.0.0.1:0", registries=[server.gossip]):
        with Client([server.grpc]) as c:
            view = c.group("chg")
            wait_until(lambda: len(view.members()) == 1, what="chg-1 in the view")
            before_version, before_sum = view.version, view.checksum
            seen, callback_threads = [], set()

            def on_change(change):
                seen.append(change)
                callback_threads.add(threading.get_ident())

            view.on_change(on_change)

            async def main():
                changes = view.changes()
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(changes.__anext__(), 0.3)  # nothing changed
                with Registration("chg-2", "chg", "127.0.0.1:7202", "127.0.0.1:0", registries=[server.gossip]):
                    change = await asyncio.wait_for(changes.__anext__(), 10)
                    with pytest.raises(asyncio.TimeoutError):
                        await asyncio.wait_for(changes.__anext__(), 0.5)  # one change, one event
                    after_sum = view.checksum
                view.close()
                rest = [c async for c in changes]  # ends once the view is closed
                return change, after_sum, rest

            change, after_sum, rest = asyncio.run(asyncio.wait_for(main(), 30))
            assert (change.old_version, change.old_checksum) == (before_version, before_sum)
            assert change.new_version > before_version and change.new_checksum == after_sum != before_sum
            moves = change.moves()
            assert moves.gained_by("chg-2") and not moves.lost_by("chg-2")
            assert change.new_ring.checksum == after_sum
            assert len(rest) <= 1, rest  # at most the leave of chg-2
            assert seen and seen[0].new_checksum == after_sum and seen[0].old_checksum == before_sum
            assert len([s for s in seen if s.new_checksum == after_sum]) == 1, seen
            assert threading.get_ident() not in callback_threads


def test_one_client_and_view_shared_by_threads(client, two_services):
    view = client.group(GROUP)
    wait_until(lambda: len(view.members()) == 2, what="both services in the view")
    keys = ["t-%d" % i for i in range(300)]
    expected = [client.match(GROUP, k).id for k in keys]
    results, errors = [], []

    def work():
        try:
            results.append([client.match(GROUP, k).id for k in keys[:50]])
            results.append([view.match(k).id for k in keys])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results, key=len) == [expected[:50]] * 4 + [expected] * 4


def test_async_client(server, two_services):
    async def main():
        async with await AsyncClient.connect([server.grpc]) as c:
            members = []
            for _ in range(200):
                members = await c.members(GROUP)
                if len(members) == 2:
                    break
                await asyncio.sleep(0.05)
            assert ids(members) == ["user-1", "user-2"]
            owners = await asyncio.gather(*(c.match(GROUP, "user-%d" % i) for i in range(20)))
            view = await c.group(GROUP)
            assert [view.match("user-%d" % i) for i in range(20)] == owners
            with pytest.raises(NotFoundError):
                await c.match("no-such-group", "k")

    asyncio.run(main())


def test_a_draining_member_is_listed_and_owns_no_keys(client, server):
    group = "drain-group"
    regs = [
        Registration("d-%d" % i, group, "127.0.0.1:%d" % (8300 + i), bind="127.0.0.1:0", registries=[server.gossip])
        for i in (1, 2, 3)
    ]
    for r in regs:
        r.start()
    try:
        view = client.group(group)
        keys = ["user-%d" % i for i in range(400)]

        def draining_is(want):
            members = view.members()
            return len(members) == 3 and {m.id: m.draining for m in members}["d-2"] is want

        def owners():
            local = [view.match(k).id for k in keys]
            assert local == [client.match(group, k).id for k in keys]
            return local

        wait_until(lambda: draining_is(False), what="three serving members")
        before, serving_sum = owners(), view.checksum
        ring_before = view.ring()
        assert ring_before.checksum == serving_sum and ring_before.draining == []
        assert [ring_before.locate(k) for k in keys] == before
        for k, owner in zip(keys, before):
            routed = view.route(k, "d-2")
            assert (routed is None) == (owner == "d-2")
            assert routed is None or routed.id == owner

        regs[1].update(draining=True)
        assert regs[1].service.draining is True
        wait_until(lambda: draining_is(True), what="d-2 draining in the view")
        listed = {m.id: m for m in client.members(group)}
        assert listed["d-2"].draining and not listed["d-1"].draining
        assert "draining=True" in repr(listed["d-2"])
        after = owners()
        ring_after = view.ring()
        assert ring_after.checksum == view.checksum and ring_after.draining == ["d-2"]
        assert [ring_after.locate(k) for k in keys] == after
        assert [ring_before.locate(k) for k in keys] == before, "a ring taken earlier does not change"
        # What moved, as data: only d-2's keys, each to the owner the view now gives.
        moves = ring_before.moves_to(ring_after)
        assert len(moves) > 0 and 0 < moves.fraction < 1
        assert all(r.from_ == "d-2" and r.to in ("d-1", "d-3") for r in moves), moves.ranges[:5]
        assert moves.lost_by("d-2") == moves.ranges and moves.gained_by("d-2") == []
        assert sum(r.positions for r in moves.lost_by("d-2")) == moves.positions
        for k, b, a in zip(keys, before, after):
            r = moves.of_key(k)
            assert (r is not None) == (b != a), k
            assert r is None or (r.from_, r.to) == (b, a), (k, r)
        # Handle-or-forward: d-2, draining, forwards every key to its owner.
        for k, owner in zip(keys, after):
            forward = view.route(k, "d-2")
            assert forward is not None and forward.id == owner
        assert "d-2" in before and "d-2" not in after
        assert all(b == a for b, a in zip(before, after) if b != "d-2"), "only d-2's keys move"
        assert view.checksum != serving_sum
        assert [s.id for s in view.match_n("user-1", 3)] == [s.id for s in client.match_n(group, "user-1", 3)]
        assert "d-2" not in [s.id for s in view.match_n("user-1", 3)]
        assert len(view.match_n("user-1", 3)) == 2

        regs[1].update(draining=False)
        wait_until(lambda: draining_is(False), what="d-2 serving again")
        assert owners() == before
        assert view.checksum == serving_sum
        # Serving again gives d-2 back exactly the ranges it handed off.
        back = ring_after.moves_to(view.ring())
        assert [(r.first, r.last, r.from_, r.to) for r in back] == [(r.first, r.last, r.to, r.from_) for r in moves]
        assert len(ring_before.moves_to(view.ring())) == 0
        view.close()
        with pytest.raises(UnavailableError, match="closed"):
            view.ring()
        assert ring_after.locate("user-1") == after[keys.index("user-1")], "a ring outlives its view"
    finally:
        for r in regs:
            r.stop()
