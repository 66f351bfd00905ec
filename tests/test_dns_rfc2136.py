"""The rfc2136 provider against a real BIND 9 primary (layout a)."""

from __future__ import annotations

import base64
import logging

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest
from dnsservers import BindServer, update_records
from provider_contract import TARGET, ProviderContract, Seed, Stored

from o365dkim.dns.provider import create_provider
from o365dkim.dns.records import CnameRecord
from o365dkim.dns.rfc2136 import Rfc2136Provider
from o365dkim.errors import (
    ConfigurationError,
    DnsProviderError,
    InvalidInputError,
    ZoneNotFoundError,
)

pytestmark = pytest.mark.bind

ZONE = "example.com"


def read_at(server: BindServer, host: str) -> list[tuple[str, str]]:
    query = dns.message.make_query(host, "ANY")
    query.flags &= ~dns.flags.RD
    response = dns.query.tcp(query, server.address, port=server.port, timeout=5)
    return sorted(
        (dns.rdatatype.to_text(rrset.rdtype), rdata.to_text())
        for rrset in response.answer
        for rdata in rrset
    )


def provider_for(server: BindServer, **overrides: str) -> Rfc2136Provider:
    settings = {
        "server": server.server,
        "key_name": server.tsig_key_name,
        "key_secret": server.tsig_secret,
        "key_algorithm": server.tsig_algorithm,
    }
    settings.update(overrides)
    return Rfc2136Provider(**settings)


class TestRfc2136Contract(ProviderContract):
    @pytest.fixture
    def provider(self, bind_server: BindServer) -> Rfc2136Provider:
        return provider_for(bind_server)

    @pytest.fixture
    def zone(self) -> str:
        return ZONE

    @pytest.fixture
    def seed(self, bind_server: BindServer) -> Seed:
        def seed(host: str, rtype: str, value: str) -> None:
            update_records(bind_server, ZONE, add=[(host, rtype, value)])

        return seed

    @pytest.fixture
    def stored(self, bind_server: BindServer) -> Stored:
        return lambda host: read_at(bind_server, host)


def test_rfc2136_writes_provider_ttl(bind_server: BindServer, unique_label: str) -> None:
    provider = provider_for(bind_server, ttl="600")
    host = f"selector2._domainkey.{unique_label}.{ZONE}"

    provider.publish(CnameRecord(host, TARGET))

    query = dns.message.make_query(host, "CNAME")
    response = dns.query.udp(query, bind_server.address, port=bind_server.port, timeout=5)
    assert response.answer[0].ttl == 600


def test_rfc2136_bad_secret_rejected(
    bind_server: BindServer, unique_label: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_secret = base64.b64encode(b"not the secret the server has!!!").decode()
    provider = provider_for(bind_server, key_secret=wrong_secret)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DnsProviderError) as caught:
        provider.publish(CnameRecord(f"selector1._domainkey.{unique_label}.{ZONE}", TARGET))

    assert "TSIG" in str(caught.value)
    assert "secret" in str(caught.value)
    assert wrong_secret not in str(caught.value)
    assert wrong_secret not in caplog.text
    assert bind_server.tsig_secret not in caplog.text


def test_rfc2136_unknown_key_rejected(bind_server: BindServer, unique_label: str) -> None:
    provider = provider_for(bind_server, key_name="no-such-key")

    with pytest.raises(DnsProviderError) as caught:
        provider.publish(CnameRecord(f"selector1._domainkey.{unique_label}.{ZONE}", TARGET))

    assert "does not know the TSIG key 'no-such-key'" in str(caught.value)


def test_rfc2136_unsigned_update_refused(bind_server: BindServer, unique_label: str) -> None:
    provider = Rfc2136Provider(bind_server.server)

    with pytest.raises(DnsProviderError) as caught:
        provider.publish(CnameRecord(f"selector1._domainkey.{unique_label}.{ZONE}", TARGET))

    assert "refused the update" in str(caught.value)
    assert "allow-update" in str(caught.value)


def test_rfc2136_secret_absent_from_repr(bind_server: BindServer) -> None:
    provider = provider_for(bind_server)

    assert bind_server.tsig_secret not in repr(provider)
    assert bind_server.tsig_secret not in repr(vars(provider))


def test_rfc2136_timeout_reported(silent_server: tuple[str, int], unique_label: str) -> None:
    address, port = silent_server
    provider = Rfc2136Provider(f"{address}:{port}", timeout="0.3")

    with pytest.raises(DnsProviderError) as caught:
        provider.find_zone(f"selector1._domainkey.{unique_label}.{ZONE}")

    assert "timed out after 0.3 s" in str(caught.value)


def test_rfc2136_delegated_zone_not_found(bind_server: BindServer, unique_label: str) -> None:
    child = f"{unique_label}.{ZONE}"
    update_records(bind_server, ZONE, add=[(child, "NS", "ns.elsewhere.example.")])
    provider = provider_for(bind_server)

    with pytest.raises(ZoneNotFoundError) as caught:
        provider.find_zone(f"selector1._domainkey.{child}")

    assert f"in the zone {child}" in str(caught.value)


def test_rfc2136_from_options_strings(bind_server: BindServer) -> None:
    provider = create_provider(
        "rfc2136",
        {
            "server": bind_server.server,
            "key-name": bind_server.tsig_key_name,
            "key_secret": bind_server.tsig_secret,
            "ttl": "300",
            "timeout": "2.5",
        },
    )

    assert isinstance(provider, Rfc2136Provider)
    assert provider.ttl == 300
    assert provider.timeout == 2.5


def test_rfc2136_from_options_unknown_option() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Rfc2136Provider.from_options({"server": "127.0.0.1", "zone": "example.com"})

    assert "zone" in str(caught.value)


def test_rfc2136_from_options_needs_server() -> None:
    with pytest.raises(ConfigurationError):
        Rfc2136Provider.from_options({"key_name": "k"})


def test_rfc2136_partial_key_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Rfc2136Provider("127.0.0.1", key_name="update-key")

    assert "key_secret is missing" in str(caught.value)


def test_rfc2136_invalid_secret_hidden() -> None:
    secret = "this is not base64 but a pass phrase!"

    with pytest.raises(InvalidInputError) as caught:
        Rfc2136Provider("127.0.0.1", key_name="update-key", key_secret=secret)

    assert "not valid base64" in str(caught.value)
    assert secret not in str(caught.value)


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "HMAC-SHA512", "hmac-md5.sig-alg.reg.int."])
def test_rfc2136_algorithm_names_accepted(algorithm: str) -> None:
    secret = base64.b64encode(b"0123456789abcdef").decode()

    provider = Rfc2136Provider("127.0.0.1", "k", secret, key_algorithm=algorithm)

    assert provider.key_algorithm == algorithm


def test_rfc2136_unknown_algorithm_rejected() -> None:
    secret = base64.b64encode(b"0123456789abcdef").decode()

    with pytest.raises(InvalidInputError) as caught:
        Rfc2136Provider("127.0.0.1", "k", secret, key_algorithm="hmac-sha3")

    assert "hmac-sha3" in str(caught.value)


@pytest.mark.parametrize(
    ("option", "value"), [("ttl", "-1"), ("ttl", "1h"), ("timeout", "0"), ("timeout", "soon")]
)
def test_rfc2136_invalid_numbers_rejected(option: str, value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Rfc2136Provider.from_options({"server": "127.0.0.1", option: value})

    assert repr(value) in str(caught.value)


def test_rfc2136_invalid_server_rejected() -> None:
    with pytest.raises(InvalidInputError):
        Rfc2136Provider("127.0.0.1:dns")
