"""Registration without a registry: checked arguments, lifecycle."""

import re

import pytest

from registry_client import InvalidArgumentError, Registration, Service, UnavailableError

KEY = "00" * 32


def make(**overrides):
    args = dict(id="api-1", group="api", addr="127.0.0.1:8080", bind="127.0.0.1:0")
    args.update(overrides)
    return Registration(**args)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(id=""), "id"),
        (dict(group=""), "group"),
        (dict(bind="localhost"), "bind"),
        (dict(bind="127.0.0.1:99999"), "bind"),
        (dict(advertise="nowhere"), "advertise"),
        (dict(weight=0), "weight"),
        (dict(weight=-2), "weight"),
        (dict(tags={"": "v"}), "tag"),
        (dict(tags=["not", "a", "dict"]), "tags"),
        (dict(encrypt_key="abc"), "key"),
        (dict(encrypt_key=b"short"), "key"),
        (dict(encrypt_key="zz" * 32), "hex"),
        (dict(encrypt_key=[]), "empty"),
        (dict(registries=[7370]), "registry"),
    ],
)
def test_bad_arguments_name_the_field(overrides, field):
    with pytest.raises(InvalidArgumentError, match=field):
        make(**overrides)


def test_describes_the_service_before_start():
    reg = make(weight=3, tags={"zone": "a"}, encrypt_key=[KEY, bytes(32)], registries="127.0.0.1:7370")
    assert not reg.running and not reg.joined
    assert reg.service == Service("api-1", "api", "127.0.0.1:8080", weight=3, tags={"zone": "a"})
    assert "stopped" in repr(reg)
    with pytest.raises(UnavailableError):
        reg.local_addr


def test_update_before_start_changes_what_will_register():
    reg = make()
    reg.update(weight=7, addr="127.0.0.1:9090")
    assert reg.service.weight == 7 and reg.service.addr == "127.0.0.1:9090"
    with pytest.raises(InvalidArgumentError):
        reg.update(group="")
    assert reg.service.group == "api"


def test_start_binds_and_stop_is_idempotent_even_with_no_registry_up():
    with make(registries=["127.0.0.1:1"]) as reg:
        assert reg.running
        host, port = reg.local_addr.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        reg.start()  # already started: nothing happens
        assert not reg.joined
    assert not reg.running
    reg.stop()
    # A stopped registration can start again.
    reg.start()
    assert reg.running
    reg.stop()


@pytest.mark.parametrize(
    "overrides, why",
    [
        (dict(addr="127.0.0.1"), "no port"),
        (dict(addr="api:0"), 'port "0" is not 1 to 65535'),
        (dict(addr="api:65536"), 'port "65536" is not 1 to 65535'),
        (dict(addr="not an address:80"), "is not an IP address or DNS name"),
        (dict(addr="http://api:80"), "without a scheme"),
        (dict(addr="api:80\nfake 10.6.6.6:1"), "addr contains a control character"),
        (dict(tags={"zone": "eu\x1b[2J"}), 'tag "zone" contains a control character'),
        (dict(tags={"zone\n": "eu"}), "a tag key contains a control character"),
    ],
)
def test_bad_addresses_and_tag_values_are_refused(overrides, why):
    with pytest.raises(InvalidArgumentError, match=re.escape(why)):
        make(**overrides)
    with pytest.raises(InvalidArgumentError, match=re.escape(why)):
        make().update(**overrides)
    base = dict(id="a", group="g", addr="h:1")
    base.update(overrides)
    with pytest.raises(InvalidArgumentError, match=re.escape(why)):
        Service(**base)


def test_addresses_of_every_form_are_accepted():
    for addr in ["127.0.0.1:1", "[::1]:9800", "api-1.svc.cluster.local:443", "my_service:65535"]:
        assert make(addr=addr).service.addr == addr


@pytest.mark.parametrize("field", ["bind", "advertise"])
def test_a_gossip_address_is_worded_as_in_every_front_door(field):
    # The core's wording, as C and Go report config.bind and config.advertise.
    with pytest.raises(
        InvalidArgumentError, match=r'^%s "nowhere" is not an ip:port address: ' % field
    ):
        make(**{field: "nowhere"})
