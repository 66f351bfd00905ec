"""The lexicon bridge as lexicon:powerdns, against the real PowerDNS server and its API."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pdnsserver import PowerDnsServer
from provider_contract import TARGET, ProviderContract, Seed, Stored

from o365dkim.dns import lexicon as lexicon_bridge
from o365dkim.dns.lexicon import LexiconProvider
from o365dkim.dns.provider import create_provider, load_provider_class
from o365dkim.dns.records import CnameRecord
from o365dkim.errors import (
    ConfigurationError,
    DnsProviderError,
    DnsReadBackError,
    UnknownProviderError,
)

ZONE = "lexicon.example"


def provider_for(server: PowerDnsServer, **overrides: str) -> LexiconProvider:
    options = {"auth_token": server.api_key, "pdns_server": server.api_url, **overrides}
    provider = create_provider("lexicon:powerdns", options)
    assert isinstance(provider, LexiconProvider)
    return provider


def put_rrset(server: PowerDnsServer, host: str, rtype: str, value: str) -> None:
    rrset = {
        "name": host + ".",
        "type": rtype,
        "ttl": 300,
        "changetype": "REPLACE",
        "records": [{"content": value, "disabled": False}],
    }
    response = server.request("PATCH", f"/{ZONE}.", {"rrsets": [rrset]})
    assert response.status_code == 204, response.text


def stored_at(server: PowerDnsServer, host: str) -> list[tuple[str, str]]:
    response = server.request("GET", f"/{ZONE}.")
    response.raise_for_status()
    return sorted(
        (rrset["type"], record["content"])
        for rrset in response.json()["rrsets"]
        if rrset["name"] == host + "."
        for record in rrset["records"]
    )


class TestLexiconPowerDnsContract(ProviderContract):
    @pytest.fixture
    def provider(self, pdns_server: PowerDnsServer) -> LexiconProvider:
        return provider_for(pdns_server)

    @pytest.fixture
    def zone(self) -> str:
        return ZONE

    @pytest.fixture
    def seed(self, pdns_server: PowerDnsServer) -> Seed:
        return lambda host, rtype, value: put_rrset(pdns_server, host, rtype, value)

    @pytest.fixture
    def stored(self, pdns_server: PowerDnsServer) -> Stored:
        return lambda host: stored_at(pdns_server, host)


def test_lexicon_class_named_for_provider() -> None:
    provider_class = load_provider_class("lexicon:powerdns")

    assert provider_class.name == "lexicon:powerdns"


def test_lexicon_unfixed_target_caught(
    pdns_server: PowerDnsServer, unique_label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the fix, lexicon's powerdns provider appends the zone to the target."""
    monkeypatch.setattr(lexicon_bridge, "TARGET_FIXES", {})
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    with pytest.raises(DnsReadBackError) as caught:
        provider_for(pdns_server).publish(CnameRecord(host, TARGET))

    assert f"{TARGET}.{ZONE}" in str(caught.value)
    assert "appended to the target" in str(caught.value)


def test_lexicon_writes_ttl(pdns_server: PowerDnsServer, unique_label: str) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(pdns_server, ttl="900").publish(CnameRecord(host, TARGET))

    found = provider_for(pdns_server).list_records(ZONE, host)
    assert [item.ttl for item in found] == [900]


def test_lexicon_wrong_key_hint(
    pdns_server: PowerDnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "lexicon-key-the-server-lacks"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DnsProviderError) as caught:
        provider_for(pdns_server, auth_token=wrong).check_access(ZONE)

    assert "401" in str(caught.value)
    assert "auth_token" in str(caught.value)
    assert wrong not in str(caught.value)
    assert wrong not in caplog.text


def test_lexicon_unreachable_server(pdns_server: PowerDnsServer) -> None:
    from dnsservers import free_port

    provider = provider_for(pdns_server, pdns_server=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(DnsProviderError) as caught:
        provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert "reachable" in str(caught.value)


def test_lexicon_unknown_zone_lists_tries(pdns_server: PowerDnsServer) -> None:
    from o365dkim.errors import ZoneNotFoundError

    with pytest.raises(ZoneNotFoundError) as caught:
        provider_for(pdns_server).find_zone("selector1._domainkey.nowhere.invalid")

    assert "nowhere.invalid: HTTP 404" in str(caught.value)


def test_lexicon_unknown_option_rejected(pdns_server: PowerDnsServer) -> None:
    with pytest.raises(ConfigurationError) as caught:
        provider_for(pdns_server, api_key="x")

    assert "api_key" in str(caught.value)
    assert "auth_token" in str(caught.value)


def test_lexicon_unknown_provider_rejected() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        create_provider("lexicon:nosuchdns", {})

    assert "cloudflare" in str(caught.value)


def test_lexicon_invalid_name_rejected() -> None:
    with pytest.raises(UnknownProviderError):
        create_provider("lexicon:../etc", {})


def test_lexicon_reads_keyring_option(pdns_server: PowerDnsServer, keyring_file: Any) -> None:
    keyring_file.set_password("o365dkim", "pdns", pdns_server.api_key)

    provider = provider_for(pdns_server, auth_token="keyring:pdns")

    assert provider.find_zone(f"selector1._domainkey.{ZONE}") == ZONE


def test_lexicon_key_absent_from_repr(pdns_server: PowerDnsServer) -> None:
    provider = provider_for(pdns_server)

    assert pdns_server.api_key not in repr(provider)


def test_lexicon_record_visible_to_powerdns(pdns_server: PowerDnsServer, unique_label: str) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(pdns_server).publish(CnameRecord(host, TARGET))

    assert stored_at(pdns_server, host) == [("CNAME", TARGET + ".")]
