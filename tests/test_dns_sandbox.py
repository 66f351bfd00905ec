"""The sandbox provider against the in-process sandbox DNS server."""

from __future__ import annotations

import dns.message
import dns.query
import pytest
from provider_contract import TARGET, ProviderContract, Seed, Stored

from o365dkim.dns.provider import create_provider
from o365dkim.dns.records import CnameRecord
from o365dkim.dns.sandbox import SandboxProvider
from o365dkim.errors import ConfigurationError
from o365dkim.sandbox.dns_server import SandboxDnsServer


class TestSandboxContract(ProviderContract):
    @pytest.fixture
    def provider(self, sandbox_dns: SandboxDnsServer) -> SandboxProvider:
        return SandboxProvider(sandbox_dns)

    @pytest.fixture
    def zone(self) -> str:
        return "contoso.test"

    @pytest.fixture
    def seed(self, sandbox_dns: SandboxDnsServer) -> Seed:
        def seed(host: str, rtype: str, value: str) -> None:
            sandbox_dns.set_rrset(host, rtype, [value])

        return seed

    @pytest.fixture
    def stored(self, sandbox_dns: SandboxDnsServer) -> Stored:
        return lambda host: [(rtype, value) for rtype, value, _ in sandbox_dns.records(host)]


def test_sandbox_primary_serves_at_once(sandbox_dns: SandboxDnsServer) -> None:
    host = "selector1._domainkey.contoso.test"
    SandboxProvider(sandbox_dns).publish(CnameRecord(host, TARGET))

    address, port = sandbox_dns.primary
    response = dns.query.udp(dns.message.make_query(host, "CNAME"), address, port=port, timeout=2)

    assert response.answer[0][0].target.to_text() == TARGET + "."


def test_sandbox_secondary_serves_later(sandbox_dns: SandboxDnsServer) -> None:
    host = "selector1._domainkey.contoso.test"

    SandboxProvider(sandbox_dns).publish(CnameRecord(host, TARGET))

    assert sandbox_dns.lookup_cname(host, view="secondary") is None


def test_sandbox_writes_record_ttl(sandbox_dns: SandboxDnsServer) -> None:
    host = "selector1._domainkey.contoso.test"

    SandboxProvider(sandbox_dns).publish(CnameRecord(host, TARGET, ttl=900))

    assert sandbox_dns.records(host) == [("CNAME", TARGET + ".", 900)]


def test_sandbox_from_options_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_provider("sandbox", {})

    assert "only with --sandbox" in str(caught.value)
