"""Errors: the right class for each failure, and the builtin it also is."""

import pickle

import pytest

import registry_client as rc
from registry_client import (
    AlreadyExistsError,
    Client,
    InvalidArgumentError,
    LimitExceededError,
    NotFoundError,
    RegistryError,
    RegistryTimeoutError,
    UnavailableError,
)

# A port nobody listens on: connecting is refused at once.
DEAD = "127.0.0.1:1"


def test_every_error_is_a_registry_error_and_its_builtin():
    assert issubclass(InvalidArgumentError, (RegistryError, ValueError))
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(UnavailableError, ConnectionError)
    assert issubclass(RegistryTimeoutError, TimeoutError)
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        UnavailableError,
        RegistryTimeoutError,
        LimitExceededError,
    ):
        assert issubclass(cls, RegistryError)
        assert cls.__module__ == "registry_client"


def test_errors_pickle_round_trip():
    err = NotFoundError("group 'g' has no members")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is NotFoundError
    assert str(again) == str(err)


@pytest.mark.parametrize("registries", [[], "", [""], ["  "]])
def test_client_without_a_usable_address_is_invalid(registries):
    with pytest.raises(InvalidArgumentError):
        Client(registries)


def test_client_with_a_malformed_address_is_invalid():
    with pytest.raises(InvalidArgumentError, match="bad registry address"):
        Client(["not an address at all"])


@pytest.mark.parametrize("bad", [[1, 2], 42, None])
def test_client_with_addresses_of_the_wrong_type_is_invalid(bad):
    with pytest.raises(InvalidArgumentError):
        Client(bad)


@pytest.mark.parametrize("option", ["connect_timeout", "request_timeout"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf")])
def test_timeouts_must_be_positive_and_finite(option, value):
    with pytest.raises(InvalidArgumentError, match=option):
        Client([DEAD], **{option: value}, discover_registries=False)


def test_attempts_must_be_at_least_one():
    with pytest.raises(InvalidArgumentError):
        Client([DEAD], attempts=0, discover_registries=False)
    with pytest.raises(InvalidArgumentError):
        Client([DEAD], attempts=-3, discover_registries=False)


@pytest.fixture
def dead_client():
    """A client whose only registry refuses connections."""
    with Client([DEAD], connect_timeout=0.5, request_timeout=0.5) as client:
        yield client


def test_unreachable_registry_raises_unavailable(dead_client):
    with pytest.raises(UnavailableError):
        dead_client.match("user-service", "user-42")
    with pytest.raises(UnavailableError):
        dead_client.members("user-service")
    with pytest.raises(UnavailableError):
        dead_client.groups()
    # The builtin works as well as the registry's own class.
    with pytest.raises(ConnectionError):
        dead_client.match_n("user-service", "user-42", 2)


def test_local_view_of_unreachable_registry_raises_unavailable():
    with Client([DEAD], connect_timeout=0.2, request_timeout=0.2, discover_registries=False) as c:
        with pytest.raises(UnavailableError):
            c.group("user-service")


def test_bad_arguments_are_refused_before_any_network_call(dead_client):
    # Invalid input wins over the dead registry: no round trip is tried.
    with pytest.raises(InvalidArgumentError, match="key"):
        dead_client.match("user-service", "")
    with pytest.raises(InvalidArgumentError, match="group"):
        dead_client.match("", "user-42")
    with pytest.raises(InvalidArgumentError, match="group"):
        dead_client.members("")
    with pytest.raises(InvalidArgumentError, match="group"):
        dead_client.group("")
    with pytest.raises(InvalidArgumentError, match="n"):
        dead_client.match_n("user-service", "user-42", 0)
    with pytest.raises(InvalidArgumentError, match="n"):
        dead_client.match_n("user-service", "user-42", -1)
    with pytest.raises(InvalidArgumentError, match="group"):
        dead_client.match("x" * 1000, "k")


def test_wrong_argument_types_raise_type_error(dead_client):
    with pytest.raises(TypeError):
        dead_client.match("user-service", 42)
    with pytest.raises(TypeError):
        dead_client.match(None, "k")


def test_closed_client_raises_unavailable_and_close_is_idempotent():
    client = Client([DEAD], discover_registries=False)
    assert not client.closed
    client.close()
    client.close()
    assert client.closed
    assert "closed" in repr(client)
    with pytest.raises(UnavailableError, match="closed"):
        client.match("g", "k")
    with pytest.raises(UnavailableError, match="closed"):
        client.group("g")


def test_context_manager_closes_and_does_not_swallow_exceptions():
    with pytest.raises(KeyError):
        with Client([DEAD], discover_registries=False) as client:
            raise KeyError("boom")
    assert client.closed


def test_public_names():
    for name in rc.__all__:
        assert hasattr(rc, name), name
