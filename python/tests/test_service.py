"""Service values: fields, repr, equality, validation."""

import pytest

from registry_client import InvalidArgumentError, Service


def test_fields_and_defaults():
    svc = Service("user-1", "user-service", "10.0.0.1:8080")
    assert (svc.id, svc.group, svc.addr, svc.weight, svc.tags) == (
        "user-1",
        "user-service",
        "10.0.0.1:8080",
        1,
        {},
    )


def test_repr_reads_like_the_constructor():
    svc = Service("user-1", "user-service", "10.0.0.1:8080", weight=3, tags={"zone": "a"})
    assert repr(svc) == (
        "Service(id='user-1', group='user-service', addr='10.0.0.1:8080', "
        "weight=3, tags={'zone': 'a'})"
    )
    assert repr(Service("a", "g", "h:1")) == "Service(id='a', group='g', addr='h:1', weight=1)"


def test_equal_values_are_equal_and_hash_alike():
    a = Service("a", "g", "h:1", tags={"k": "v"})
    b = Service("a", "g", "h:1", tags={"k": "v"})
    c = Service("a", "g", "h:2")
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert a != "a"


def test_is_immutable_and_tags_are_a_copy():
    svc = Service("a", "g", "h:1", tags={"k": "v"})
    with pytest.raises(AttributeError):
        svc.id = "b"
    svc.tags["k"] = "changed"
    assert svc.tags == {"k": "v"}


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(id="", group="g", addr="h:1"), "id"),
        (dict(id="a", group="", addr="h:1"), "group"),
        (dict(id="a", group="g", addr="h:1", weight=0), "weight"),
        (dict(id="a", group="g", addr="h:1", weight=-1), "weight"),
        (dict(id="a", group="g", addr="h:1", weight=2**40), "weight"),
        (dict(id="a", group="g", addr="h:1", tags={"k": "v" * 10_000}), "tags"),
        (dict(id="a", group="g", addr="h:1", tags={"k": 1}), "tags"),
        (dict(id="a\n", group="g", addr="h:1"), "id"),
    ],
)
def test_bad_values_name_the_field(kwargs, field):
    with pytest.raises(InvalidArgumentError, match=field):
        Service(**kwargs)
