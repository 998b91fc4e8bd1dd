"""The standalone Ring: same answers as every other front door."""

import json
import pathlib
import threading

import pytest

from registry_client import RING_ALGORITHM, InvalidArgumentError, NotFoundError, Ring

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "ring.json"

MEMBERS = [("svc-%02d" % i, 1 + i % 3) for i in range(10)]


def test_owner_does_not_depend_on_member_order():
    a = Ring(MEMBERS)
    b = Ring(list(reversed(MEMBERS)))
    for i in range(1000):
        key = "user-%d" % i
        assert a.locate(key) == b.locate(key)


def test_locate_n_is_distinct_and_starts_with_the_owner():
    ring = Ring(MEMBERS)
    for i in range(200):
        key = "order-%d" % i
        three = ring.locate_n(key, 3)
        assert len(three) == 3
        assert len(set(three)) == 3
        assert three[0] == ring.locate(key)


def test_locate_n_caps_at_the_member_count():
    ring = Ring(["a", "b"])
    assert sorted(ring.locate_n("k", 5)) == ["a", "b"]


def test_every_member_gets_keys_roughly_by_weight():
    ring = Ring([("light", 1), ("heavy", 3)])
    counts = {"light": 0, "heavy": 0}
    for i in range(20_000):
        counts[ring.locate("key-%d" % i)] += 1
    share = counts["heavy"] / 20_000
    assert 0.65 < share < 0.85, counts


def test_bare_ids_have_weight_one_and_members_are_sorted():
    ring = Ring(["b", ("a", 2)])
    assert ring.members == [("a", 2), ("b", 1)]
    assert len(ring) == 2


def test_removing_a_member_moves_only_its_keys():
    full = Ring(MEMBERS)
    smaller = Ring(MEMBERS[1:])
    gone = MEMBERS[0][0]
    for i in range(2000):
        key = "k%d" % i
        if full.locate(key) != gone:
            assert smaller.locate(key) == full.locate(key)


def test_the_checksum_follows_joins_leaves_and_weights_not_order():
    two = Ring([("a", 1), ("b", 1)]).checksum
    assert isinstance(two, int) and 0 < two < 2**64
    assert Ring(["b", "a"]).checksum == two
    others = {
        "join": Ring(["a", "b", "c"]).checksum,
        "leave": Ring(["a"]).checksum,
        "weight": Ring([("a", 1), ("b", 2)]).checksum,
        "empty": Ring([]).checksum,
    }
    assert two not in others.values(), others
    assert len(set(others.values())) == len(others)


def test_empty_ring_has_no_owner():
    with pytest.raises(NotFoundError):
        Ring([]).locate("k")


@pytest.mark.parametrize(
    "members",
    [
        "abc",
        42,
        [("a", 1, 2)],
        [("a", -1)],
        [("a", 2**40)],
        [("a", "heavy")],
        [(1, 1)],
    ],
)
def test_bad_members_are_invalid(members):
    with pytest.raises(InvalidArgumentError):
        Ring(members)


def test_bad_n_is_invalid():
    ring = Ring(["a"])
    with pytest.raises(InvalidArgumentError):
        ring.locate_n("k", -1)


def test_one_ring_shared_by_threads_gives_the_same_answers():
    ring = Ring(MEMBERS)
    keys = ["t-%d" % i for i in range(2000)]
    expected = [ring.locate(k) for k in keys]
    results = []

    def work():
        results.append([ring.locate(k) for k in keys])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4



@pytest.fixture(scope="module")
def vectors():
    """The shared vectors file every front door must agree with."""
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert doc["format"] == "registry-ring-vectors/1", "the vectors file format changed"
    return doc


def test_vectors_use_this_ring_algorithm(vectors):
    assert vectors["algorithm"] == RING_ALGORITHM


def test_shared_vectors_give_identical_owners(vectors):
    checked = 0
    for case in vectors["cases"]:
        members = [(m["id"], m["weight"]) for m in case["members"]]
        for ring in (Ring(members), Ring(list(reversed(members)))):
            assert f"{ring.checksum:016x}" == case["checksum"], case["name"]
            for v in case["keys"]:
                assert ring.locate(v["key"]) == v["owner"], (case["name"], v["key"])
                assert ring.locate_n(v["key"], case["n"]) == v["top"], (case["name"], v["key"])
                checked += 1
    assert checked >= 100


ERROR_CLASSES = {"invalid_argument": InvalidArgumentError, "not_found": NotFoundError}


def test_shared_vectors_give_identical_errors(vectors):
    assert vectors["errors"]
    for case in vectors["errors"]:
        members = [(m["id"], m["weight"]) for m in case["members"]]

        def lookup():
            return Ring(members).locate_n(case["key"], case["n"])

        if case["error"] == "ok":
            assert lookup(), case["name"]
        else:
            with pytest.raises(ERROR_CLASSES[case["error"]]):
                lookup()


def test_a_ring_id_follows_the_id_rule_of_every_front_door():
    # The core's id rule (at most 128 bytes), as C and Go apply it.
    Ring(["a" * 128])
    with pytest.raises(InvalidArgumentError, match=r"ids\[1\] is 129 bytes, the limit is 128"):
        Ring(["a", "a" * 129])


@pytest.mark.parametrize(
    "weight, said",
    [(0, "0"), (1001, "1001"), (-1, "-1"), (2**40, str(2**40))],
)
def test_a_ring_weight_is_named_by_its_place_as_in_every_front_door(weight, said):
    # The ring's wording, as C and Go report it: weights[i]: weight W is out of range.
    with pytest.raises(
        InvalidArgumentError, match=r"^weights\[1\]: weight %s is out of range 1\.\.=1000$" % said
    ):
        Ring(["a", ("b", weight)])
