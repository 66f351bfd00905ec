"""The powerdns provider against a real PowerDNS Authoritative server and its HTTP API."""

from __future__ import annotations

import logging

import dns.message
import dns.query
import dns.rdatatype
import pytest
from dnsservers import free_port
from pdnsserver import PowerDnsServer
from provider_contract import (
    TARGET,
    ProviderContract,
    Seed,
    SeedUnserved,
    Stored,
    UnservedRecordContract,
)

from o365dkim.dns.powerdns import PowerDnsProvider
from o365dkim.dns.provider import create_provider
from o365dkim.dns.records import CnameRecord
from o365dkim.errors import ConfigurationError, DnsProviderError, InvalidInputError

ZONE = "pdns.example"


def provider_for(server: PowerDnsServer, **overrides: str) -> PowerDnsProvider:
    options = {"api_url": server.api_url, "api_key": server.api_key, **overrides}
    provider = create_provider("powerdns", options)
    assert isinstance(provider, PowerDnsProvider)
    return provider


def put_rrset(server: PowerDnsServer, host: str, rtype: str, value: str, disabled: bool) -> None:
    rrset = {
        "name": host + ".",
        "type": rtype,
        "ttl": 300,
        "changetype": "REPLACE",
        "records": [{"content": value, "disabled": disabled}],
    }
    response = server.request("PATCH", f"/{ZONE}.", {"rrsets": [rrset]})
    assert response.status_code == 204, response.text


def read_at(server: PowerDnsServer, host: str) -> list[tuple[str, str]]:
    response = server.request("GET", f"/{ZONE}.?rrsets=true&rrset_name={host}.")
    response.raise_for_status()
    return sorted(
        (rrset["type"], record["content"])
        for rrset in response.json()["rrsets"]
        if rrset["name"] == host + "."
        for record in rrset["records"]
    )


class TestPowerDnsContract(ProviderContract, UnservedRecordContract):
    @pytest.fixture
    def provider(self, pdns_server: PowerDnsServer) -> PowerDnsProvider:
        return provider_for(pdns_server)

    @pytest.fixture
    def zone(self) -> str:
        return ZONE

    @pytest.fixture
    def seed(self, pdns_server: PowerDnsServer) -> Seed:
        return lambda host, rtype, value: put_rrset(pdns_server, host, rtype, value, False)

    @pytest.fixture
    def stored(self, pdns_server: PowerDnsServer) -> Stored:
        return lambda host: read_at(pdns_server, host)

    @pytest.fixture
    def seed_unserved(self, pdns_server: PowerDnsServer) -> SeedUnserved:
        # A disabled record stays in the API but PowerDNS does not serve it.
        return lambda host, target: put_rrset(pdns_server, host, "CNAME", target + ".", True)


def test_powerdns_serves_published_cname(pdns_server: PowerDnsServer, unique_label: str) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"
    provider_for(pdns_server).publish(CnameRecord(host, TARGET))

    query = dns.message.make_query(host, "CNAME")
    response = dns.query.udp(query, "127.0.0.1", port=pdns_server.dns_port, timeout=5)

    answers = [(rrset.rdtype, rrset[0].target.to_text()) for rrset in response.answer]
    assert answers == [(dns.rdatatype.CNAME, TARGET + ".")]


def test_powerdns_writes_provider_ttl(pdns_server: PowerDnsServer, unique_label: str) -> None:
    host = f"selector2._domainkey.{unique_label}.{ZONE}"

    provider_for(pdns_server, ttl="600").publish(CnameRecord(host, TARGET))

    found = provider_for(pdns_server).list_records(ZONE, host)
    assert [item.ttl for item in found] == [600]


def test_powerdns_discovers_server_id(pdns_server: PowerDnsServer) -> None:
    provider = provider_for(pdns_server)

    report = provider.check_access(ZONE)

    assert report.zone == ZONE
    assert "server localhost" in report.checks[0]


def test_powerdns_explicit_api_path(pdns_server: PowerDnsServer) -> None:
    provider = provider_for(pdns_server, api_url=pdns_server.api_url + "/api/v1/")

    assert provider.find_zone(f"selector1._domainkey.{ZONE}") == ZONE


def test_powerdns_wrong_key_hint(
    pdns_server: PowerDnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "not-the-key-the-server-has"
    caplog.set_level(logging.DEBUG)
    provider = provider_for(pdns_server, api_key=wrong_key)

    with pytest.raises(DnsProviderError) as caught:
        provider.check_access(ZONE)

    assert "rejected the API key (HTTP 401)" in str(caught.value)
    assert "api-key setting in pdns.conf" in str(caught.value)
    assert wrong_key not in str(caught.value)
    assert wrong_key not in caplog.text
    assert pdns_server.api_key not in caplog.text


def test_powerdns_unknown_server_id(pdns_server: PowerDnsServer) -> None:
    provider = provider_for(pdns_server, server_id="no-such-server")

    with pytest.raises(DnsProviderError) as caught:
        provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert "server_id" in str(caught.value)


def test_powerdns_unreachable_api_hint() -> None:
    provider = PowerDnsProvider(f"http://127.0.0.1:{free_port()}", "key", timeout="2")

    with pytest.raises(DnsProviderError) as caught:
        provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert "cannot be reached" in str(caught.value)
    assert "webserver=yes" in str(caught.value)


def test_powerdns_key_from_environment(
    pdns_server: PowerDnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O365DKIM_POWERDNS_API_URL", pdns_server.api_url)
    monkeypatch.setenv("O365DKIM_POWERDNS_API_KEY", pdns_server.api_key)

    provider = create_provider("powerdns", {})

    assert provider.find_zone(f"selector1._domainkey.{ZONE}") == ZONE


def test_powerdns_key_absent_from_repr(pdns_server: PowerDnsServer) -> None:
    provider = provider_for(pdns_server)

    assert pdns_server.api_key not in repr(provider)
    assert pdns_server.api_key not in repr(vars(provider))


def test_powerdns_missing_key_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O365DKIM_POWERDNS_API_KEY", raising=False)

    with pytest.raises(ConfigurationError) as caught:
        PowerDnsProvider.from_options({"api_url": "http://127.0.0.1:8081"})

    assert "O365DKIM_POWERDNS_API_KEY" in str(caught.value)


def test_powerdns_unknown_option_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        PowerDnsProvider.from_options({"api_url": "http://127.0.0.1", "zone": "x"})

    assert "zone" in str(caught.value)


def test_powerdns_invalid_ttl_rejected() -> None:
    with pytest.raises(InvalidInputError):
        PowerDnsProvider("http://127.0.0.1:8081", "key", ttl="1h")
