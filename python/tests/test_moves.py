"""What moved between two rings, as data: Ring.moves_to, Moves and MovedRange."""

import json
import pathlib
import re
from collections import defaultdict

import pytest

from registry_client import RING_ALGORITHM, InvalidArgumentError, MovedRange, Moves, Ring

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "moves.json"
README = ROOT / "python" / "README.md"


@pytest.fixture(scope="module")
def vectors():
    """The shared "what moved" vectors every front door must agree with."""
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert doc["format"] == "registry-moves-vectors/1", "the vectors file format changed"
    assert doc["algorithm"] == RING_ALGORITHM
    return doc


def ring_of(members, reverse=False):
    """The Ring of a vectors member list ({id, weight, draining})."""
    triples = [(m["id"], m["weight"], m["draining"]) for m in members]
    return Ring(list(reversed(triples)) if reverse else triples)


def as_dict(r):
    """A MovedRange in the vectors' form."""
    return {"first": r.first, "last": r.last, "from": r.from_, "to": r.to}


def check_case(case, moves):
    name = case["name"]
    ranges = moves.ranges
    assert len(moves) == len(ranges) == case["ranges"], name
    assert moves.positions == sum(r.positions for r in ranges) == case["positions"], name
    assert moves.fraction == case["positions"] / 2**32, name
    assert list(moves) == ranges, name
    for a, b in zip(ranges, ranges[1:]):
        assert a.first <= a.last < b.first, (name, a, b)
        assert a.last + 1 < b.first or (a.from_, a.to) != (b.from_, b.to), (name, "unmerged", a, b)

    pairs = defaultdict(lambda: [0, 0])
    for r in ranges:
        pairs[(r.from_, r.to)][0] += 1
        pairs[(r.from_, r.to)][1] += r.positions
    want = {(p["from"], p["to"]): [p["ranges"], p["positions"]] for p in case["pairs"]}
    assert dict(pairs) == want, name
    for member in {r.from_ for r in ranges} - {None}:
        lost = moves.lost_by(member)
        assert lost == [r for r in ranges if r.from_ == member], (name, member)
        assert sum(r.positions for r in lost) == sum(p for (f, _), (_, p) in want.items() if f == member)
    for member in {r.to for r in ranges} - {None}:
        gained = moves.gained_by(member)
        assert gained == [r for r in ranges if r.to == member], (name, member)

    assert [as_dict(r) for r in ranges[:3]] == case["head"], name
    assert [as_dict(r) for r in ranges[-3:]] == case["tail"], name


def test_shared_vectors_give_identical_ranges(vectors):
    assert len(vectors["cases"]) >= 10
    for case in vectors["cases"]:
        old, new = ring_of(case["old"]), ring_of(case["new"])
        assert new.draining == sorted(m["id"] for m in case["new"] if m["draining"]), case["name"]
        check_case(case, old.moves_to(new))
        # The order members are given in changes nothing.
        check_case(case, ring_of(case["old"], True).moves_to(ring_of(case["new"], True)))


def test_shared_vectors_give_identical_keys(vectors):
    checked = 0
    for case in vectors["cases"]:
        old, new = ring_of(case["old"]), ring_of(case["new"])
        moves = old.moves_to(new)
        for v in case["keys"]:
            where = (case["name"], v["key"])
            r = moves.of_key(v["key"])
            assert moves.at(v["position"]) == r, where
            if not v["moved"]:
                assert r is None, where
                continue
            assert r is not None, where
            assert (r.from_, r.to) == (v.get("from"), v.get("to")), where
            assert v["position"] in r and r.first <= v["position"] <= r.last, where
            # The rings' own lookups agree with the range.
            if r.from_ is not None:
                assert old.locate(v["key"]) == r.from_, where
            if r.to is not None:
                assert new.locate(v["key"]) == r.to, where
            checked += 1
    assert checked >= 100


def test_a_key_moved_iff_its_owner_changed():
    old = Ring([("a", 1), ("b", 2), ("c", 1)])
    new = Ring([("a", 1), ("b", 2), ("c", 1, True), ("d", 1)])
    moves = old.moves_to(new)
    for i in range(2000):
        key = "k%d" % i
        before, after = old.locate(key), new.locate(key)
        r = moves.of_key(key)
        if before == after:
            assert r is None, key
        else:
            assert r is not None and (r.from_, r.to) == (before, after), key
    assert not old.moves_to(Ring(["c", ("b", 2), "a"]))
    assert len(new.moves_to(old)) == len(moves)


def test_a_range_is_a_frozen_value():
    moves = Ring(["a", "b"]).moves_to(Ring(["a", "b", "c"]))
    first = moves.ranges[0]
    assert isinstance(moves, Moves) and isinstance(first, MovedRange)
    assert first == moves.ranges[0] and hash(first) == hash(moves.ranges[0])
    assert first != moves.ranges[1]
    assert len({*moves.ranges, *moves.ranges}) == len(moves)
    assert first.positions == first.last - first.first + 1
    assert first.first in first and first.last in first
    assert first.last + 1 not in first and -1 not in first and 2**40 not in first
    assert repr(first) == "MovedRange(first=%d, last=%d, from_=%r, to='c')" % (first.first, first.last, first.from_)
    assert re.fullmatch(r"Moves\(<%d ranges, 0\.\d{4} of the keys>\)" % len(moves), repr(moves))
    with pytest.raises(AttributeError):
        first.first = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        MovedRange()  # type: ignore[call-arg]


def test_from_nothing_and_to_nothing_the_owner_is_none():
    up = Ring([]).moves_to(Ring(["a"]))
    assert up.fraction == 1.0 and up.positions == 2**32
    assert {(r.from_, r.to) for r in up} == {(None, "a")}
    assert up.ranges[0].first == 0 and up.ranges[-1].last == 2**32 - 1
    down = Ring(["a"]).moves_to(Ring([("a", 1, True)]))
    assert {(r.from_, r.to) for r in down} == {("a", None)}
    assert down.lost_by("a") == down.ranges and down.gained_by("a") == []


def test_draining_members_are_given_as_triples():
    ring = Ring(["a", ("b", 2, True), ("c", 1, False)])
    assert ring.members == [("a", 1), ("b", 2), ("c", 1)]
    assert ring.draining == ["b"]
    assert repr(ring) == "Ring(<3 members, 1 draining>)"
    assert "b" not in {ring.locate("k%d" % i) for i in range(500)}
    assert ring.checksum != Ring(["a", ("b", 2), "c"]).checksum
    # A draining member's leave moves no key.
    assert len(ring.moves_to(Ring(["a", "c"]))) == 0


@pytest.mark.parametrize(
    "members, said",
    [
        ([("a", 1, 2)], r"members\[0\]: draining must be a bool"),
        ([("a", 1), ("b", 1, "yes")], r"members\[1\]: draining must be a bool"),
        ([("a", 1, True, 4)], "an \\(id, weight, draining\\) triple"),
        ([("a", 0, True)], r"weights\[0\]: weight 0 is out of range"),
        (["a", (1, 1, False)], r"ids\[1\] must be a str"),
        (["a", "\ud800"], r"ids\[1\] is not valid UTF-8"),
        ([("\udcff", 1)], r"ids\[0\] is not valid UTF-8"),
    ],
)
def test_bad_members_say_which_and_why(members, said):
    with pytest.raises(InvalidArgumentError, match=said):
        Ring(members)


def test_bad_arguments_raise_clear_errors():
    ring = Ring(["a", "b"])
    moves = ring.moves_to(Ring(["a", "b", "c"]))
    for not_a_ring in ("a", None, ["a", "b"], moves):
        with pytest.raises(TypeError, match="Ring"):
            ring.moves_to(not_a_ring)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="key is empty"):
        moves.of_key("")
    with pytest.raises(TypeError):
        moves.of_key(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="surrogates"):
        moves.of_key("\ud800")
    for bad in (lambda: moves.lost_by(""), lambda: moves.gained_by("")):
        with pytest.raises(InvalidArgumentError, match="id is empty"):
            bad()
    with pytest.raises(TypeError):
        moves.lost_by(None)  # type: ignore[arg-type]
    for out in (-1, 2**32, 2**70):
        with pytest.raises(InvalidArgumentError, match="out of range 0..=4294967295"):
            moves.at(out)
    for not_an_int in ("1", 1.0, None):
        with pytest.raises(InvalidArgumentError, match="must be an int"):
            moves.at(not_an_int)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="must be an int"):
            not_an_int in moves.ranges[0]  # noqa: B015
    with pytest.raises(TypeError):
        Moves()  # type: ignore[call-arg]


def readme_block(heading):
    """The first ```python block under ``heading`` in python/README.md."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n" + heading + "\n", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


@pytest.mark.parametrize("heading", ["## The ring on its own", "## What moved"])
def test_the_readme_ring_snippets_run(heading):
    exec(compile(readme_block(heading), "python/README.md: " + heading, "exec"), {})
