"""The azure provider through the real azure-mgmt-dns SDK against a local HTTPS fake.

Azure Resource Manager cannot run here, so azure_fake.py replaces it, built from the
REST reference and rejecting (and recording) any request the real API would reject. The
sign-in is a tiny TokenCredential written for these tests, because azure-identity's real
credentials would call Entra ID or the instance metadata service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure_fake import AzureDnsFake, FakeZone, Identity
from provider_contract import TARGET, ProviderContract, Seed, Stored

from o365dkim.dns.azure import AzureDnsProvider
from o365dkim.dns.options import ProviderOptions, relative_name
from o365dkim.dns.records import CnameRecord, PublishAction
from o365dkim.errors import ConfigurationError, DnsProviderError, ZoneNotFoundError
from o365dkim.sandbox.ca import EphemeralCA

SUBSCRIPTION = "00000000-0000-4000-8000-0000000000a1"
ZONE = "az.example"
WRITER_TOKEN = "azure-writer-token-0123456789"
READER_TOKEN = "azure-reader-token-0123456789"


class StaticCredential:
    """A TokenCredential that returns one fixed token, standing in for azure-identity."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def ca() -> EphemeralCA:
    return EphemeralCA("azure fake CA")


@pytest.fixture
def fake(ca: EphemeralCA) -> Iterator[AzureDnsFake]:
    server = AzureDnsFake(ca, SUBSCRIPTION)
    server.add_zone(ZONE, "dns-rg")
    server.add_zone(f"internal.{ZONE}", "dns-rg", zone_type="Private")
    server.tokens[WRITER_TOKEN] = Identity("writer", can_write=True)
    server.tokens[READER_TOKEN] = Identity("reader", can_write=False)
    with server:
        yield server
    assert server.violations == []


@pytest.fixture
def ca_bundle(fake: AzureDnsFake, tmp_path: Path) -> str:
    return fake.write_ca_bundle(tmp_path)


def provider_for(
    fake: AzureDnsFake, ca_bundle: str, token: str = WRITER_TOKEN, **settings: Any
) -> AzureDnsProvider:
    return AzureDnsProvider(
        SUBSCRIPTION,
        credential=StaticCredential(token),
        base_url=fake.base_url,
        ca_bundle=ca_bundle,
        **settings,
    )


def _zone(fake: AzureDnsFake) -> FakeZone:
    return next(zone for zone in fake.zones if zone.name == ZONE)


def seed_set(fake: AzureDnsFake, host: str, rtype: str, value: str) -> None:
    properties: dict[str, Any] = {"TTL": 300}
    if rtype == "CNAME":
        properties["CNAMERecord"] = {"cname": value.rstrip(".")}
    elif rtype == "TXT":
        properties["TXTRecords"] = [{"value": [value.strip('"')]}]
    elif rtype == "CAA":
        flags, tag, caa_value = value.split(" ", 2)
        properties["caaRecords"] = [
            {"flags": int(flags), "tag": tag, "value": caa_value.strip('"')}
        ]
    else:
        raise AssertionError(f"seed_set does not know {rtype}")
    fake.put_set(_zone(fake), relative_name(host, ZONE), rtype, properties)


def stored_at(fake: AzureDnsFake, host: str) -> list[tuple[str, str]]:
    found = []
    for record_set in fake.sets_at(host):
        rtype = record_set["type"].rsplit("/", 1)[-1]
        properties = record_set["properties"]
        if rtype == "CNAME":
            found.append((rtype, properties["CNAMERecord"]["cname"]))
        else:
            found.append((rtype, str(properties)))
    return sorted(found)


class TestAzureContract(ProviderContract):
    @pytest.fixture
    def provider(self, fake: AzureDnsFake, ca_bundle: str) -> AzureDnsProvider:
        return provider_for(fake, ca_bundle)

    @pytest.fixture
    def zone(self) -> str:
        return ZONE

    @pytest.fixture
    def seed(self, fake: AzureDnsFake) -> Seed:
        return lambda host, rtype, value: seed_set(fake, host, rtype, value)

    @pytest.fixture
    def stored(self, fake: AzureDnsFake) -> Stored:
        return lambda host: stored_at(fake, host)


def test_azure_sends_relative_name(fake: AzureDnsFake, ca_bundle: str, unique_label: str) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(fake, ca_bundle).publish(CnameRecord(host, TARGET))

    puts = [r.path for r in fake.requests if r.method == "PUT"]
    assert [path.rsplit("/", 2)[1:] for path in puts] == [
        ["CNAME", f"selector1._domainkey.{unique_label}"]
    ]


def test_azure_create_uses_if_none_match(
    fake: AzureDnsFake, ca_bundle: str, unique_label: str
) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(fake, ca_bundle).publish(CnameRecord(host, TARGET))

    assert [r.headers.get("if-none-match") for r in fake.requests if r.method == "PUT"] == ["*"]


def test_azure_writes_provider_ttl(fake: AzureDnsFake, ca_bundle: str, unique_label: str) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(fake, ca_bundle, ttl="600").publish(CnameRecord(host, TARGET))

    assert [s["properties"]["TTL"] for s in fake.sets_at(host)] == [600]


def test_azure_skips_private_zone(fake: AzureDnsFake, ca_bundle: str) -> None:
    provider = provider_for(fake, ca_bundle)

    assert provider.find_zone(f"selector1._domainkey.internal.{ZONE}") == ZONE


def test_azure_resource_group_option(fake: AzureDnsFake, ca_bundle: str) -> None:
    fake.add_zone(ZONE, "other-rg")
    provider = provider_for(fake, ca_bundle, resource_group="dns-rg")

    assert provider.find_zone(f"selector1._domainkey.{ZONE}") == ZONE


def test_azure_same_zone_two_groups(fake: AzureDnsFake, ca_bundle: str) -> None:
    fake.add_zone(ZONE, "other-rg")

    with pytest.raises(ConfigurationError) as caught:
        provider_for(fake, ca_bundle).find_zone(f"selector1._domainkey.{ZONE}")

    assert "Set resource_group" in str(caught.value)


def test_azure_reader_role_write_hint(
    fake: AzureDnsFake, ca_bundle: str, unique_label: str
) -> None:
    provider = provider_for(fake, ca_bundle, token=READER_TOKEN)

    with pytest.raises(DnsProviderError) as caught:
        provider.publish(CnameRecord(f"selector1._domainkey.{unique_label}.{ZONE}", TARGET))

    assert "HTTP 403 AuthorizationFailed" in str(caught.value)
    assert "DNS Zone Contributor" in str(caught.value)


def test_azure_wrong_token_hint(
    fake: AzureDnsFake, ca_bundle: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "azure-token-nobody-issued-42"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DnsProviderError) as caught:
        provider_for(fake, ca_bundle, token=wrong).check_access(ZONE)

    assert "401" in str(caught.value)
    assert wrong not in str(caught.value)
    assert wrong not in caplog.text


def test_azure_check_access_reports(fake: AzureDnsFake, ca_bundle: str) -> None:
    report = provider_for(fake, ca_bundle).check_access(ZONE)

    assert report.zone == ZONE
    assert SUBSCRIPTION in report.checks[0]


def test_azure_unknown_subscription(fake: AzureDnsFake, ca_bundle: str) -> None:
    provider = AzureDnsProvider(
        "00000000-0000-4000-8000-0000000000ff",
        credential=StaticCredential(WRITER_TOKEN),
        base_url=fake.base_url,
        ca_bundle=ca_bundle,
    )

    with pytest.raises(ZoneNotFoundError):
        provider.find_zone(f"selector1._domainkey.{ZONE}")


def test_azure_token_scope_follows_base_url(fake: AzureDnsFake, ca_bundle: str) -> None:
    credential = StaticCredential(WRITER_TOKEN)
    provider = AzureDnsProvider(
        SUBSCRIPTION, credential=credential, base_url=fake.base_url, ca_bundle=ca_bundle
    )

    provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert credential.scopes[0] == (f"{fake.base_url}/.default",)


def test_azure_replace_cname(fake: AzureDnsFake, ca_bundle: str, unique_label: str) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"
    seed_set(fake, host, "CNAME", "old-target.example.net")

    result = provider_for(fake, ca_bundle).publish(CnameRecord(host, TARGET), replace=True)

    assert result.action is PublishAction.REPLACED
    assert stored_at(fake, host) == [("CNAME", TARGET)]


def test_azure_needs_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O365DKIM_AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)

    with pytest.raises(ConfigurationError) as caught:
        AzureDnsProvider.from_options({})

    assert "subscription_id" in str(caught.value)


def test_azure_invalid_credential_kind() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AzureDnsProvider.from_options({"subscription_id": SUBSCRIPTION, "credential": "magic"})

    assert "managed-identity" in str(caught.value)


def test_azure_managed_identity_credential() -> None:
    # Building the credential sends nothing; only get_token would reach the metadata service.
    from azure.identity import ManagedIdentityCredential

    from o365dkim.dns.azure import build_credential

    values = ProviderOptions(
        "azure",
        {"credential": "managed-identity", "managed_identity_client_id": "client-guid"},
        ("credential", "managed_identity_client_id"),
    )

    assert isinstance(build_credential(values), ManagedIdentityCredential)


def test_azure_client_secret_needs_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O365DKIM_AZURE_TENANT_ID", raising=False)

    with pytest.raises(ConfigurationError) as caught:
        AzureDnsProvider.from_options(
            {"subscription_id": SUBSCRIPTION, "client_id": "app", "client_secret": "s3cret-value"}
        )

    assert "tenant_id" in str(caught.value)
    assert "s3cret-value" not in str(caught.value)
