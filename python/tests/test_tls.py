"""TLS: a registry-server with --tls-cert, --tls-key and --tls-client-ca, used the way
an application would: the right CA and client certificate work; plain text, no
certificate, a foreign certificate or an untrusted server are refused."""

import pathlib

import pytest

from registry_client import Client, InvalidArgumentError, UnavailableError

GROUP = "registry-group"  # the registries' own group: never empty


@pytest.fixture
def tls_server(start_server, tls_certs: pathlib.Path):
    return start_server(
        extra=[
            "--tls-cert", str(tls_certs / "server.pem"),
            "--tls-key", str(tls_certs / "server-key.pem"),
            "--tls-client-ca", str(tls_certs / "ca.pem"),
        ]
    )


def quick(addr: str, **tls) -> Client:
    return Client(addr, attempts=1, discover_registries=False, **tls)


def test_the_right_certificates_get_answers(tls_server, tls_certs):
    with quick(
        tls_server.grpc,
        tls_ca=tls_certs / "ca.pem",
        tls_cert=str(tls_certs / "client.pem"),
        tls_key=tls_certs / "client-key.pem",
        tls_domain="localhost",
    ) as client:
        assert client.match(GROUP, "user-42").id == "registry-1"
        assert [s.id for s in client.members(GROUP)] == ["registry-1"]
        view = client.group(GROUP)
        assert view.match("user-42").id == "registry-1"


def test_pem_contents_work_like_files(tls_server, tls_certs):
    with quick(
        tls_server.grpc,
        tls_ca=(tls_certs / "ca.pem").read_bytes(),
        tls_cert=bytearray((tls_certs / "client.pem").read_bytes()),
        tls_key=(tls_certs / "client-key.pem").read_bytes(),
        tls_domain="localhost",
    ) as client:
        assert client.match(GROUP, "user-42").id == "registry-1"
    # The wrong CA given in memory is refused like the wrong file.
    with quick(
        tls_server.grpc,
        tls_ca=(tls_certs / "other-ca.pem").read_bytes(),
        tls_cert=tls_certs / "client.pem",
        tls_key=(tls_certs / "client-key.pem").read_bytes(),
    ) as client:
        with pytest.raises(UnavailableError):
            client.match(GROUP, "k")
    with pytest.raises(InvalidArgumentError, match="no CA certificate"):
        Client("127.0.0.1:1", tls_ca=b"not a PEM")
    with pytest.raises(TypeError):
        Client("127.0.0.1:1", tls_ca=42)


@pytest.mark.parametrize(
    "files",
    [
        {},  # plain text
        {"tls_ca": "ca.pem"},  # no client certificate
        {"tls_ca": "ca.pem", "tls_cert": "other-client.pem", "tls_key": "other-client-key.pem"},
        {"tls_ca": "other-ca.pem", "tls_cert": "client.pem", "tls_key": "client-key.pem"},
    ],
    ids=["plain-text", "no-certificate", "foreign-certificate", "untrusted-server"],
)
def test_wrong_or_missing_certificates_are_refused(tls_server, tls_certs, files):
    with quick(tls_server.grpc, **{k: tls_certs / v for k, v in files.items()}) as client:
        with pytest.raises(UnavailableError):
            client.match(GROUP, "k")


def test_bad_tls_options_raise_invalid_argument(tls_certs):
    with pytest.raises(InvalidArgumentError, match="no-such-ca.pem"):
        Client("127.0.0.1:1", tls_ca=tls_certs / "no-such-ca.pem")
    with pytest.raises(InvalidArgumentError, match="need tls_ca"):
        Client("127.0.0.1:1", tls_cert=tls_certs / "client.pem", tls_key=tls_certs / "client-key.pem")
    with pytest.raises(InvalidArgumentError, match="no CA certificate"):
        Client("127.0.0.1:1", tls_ca=tls_certs / "client-key.pem")
