"""The cloudflare provider against a local HTTPS fake of the Cloudflare API v4.

Cloudflare cannot run here, so the fake in cloudflare_fake.py replaces it. The fake
rejects (and records as a violation) every request the real API would reject.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudflare_fake import CloudflareFake, FakeZone
from provider_contract import (
    TARGET,
    ProviderContract,
    Seed,
    SeedUnserved,
    Stored,
    UnservedRecordContract,
)

from o365dkim.dns.cloudflare import CloudflareProvider
from o365dkim.dns.provider import create_provider
from o365dkim.dns.records import CnameRecord, PublishAction
from o365dkim.errors import (
    ConfigurationError,
    DnsConflictError,
    DnsProviderError,
    InvalidInputError,
    ZoneNotFoundError,
)
from o365dkim.sandbox.ca import EphemeralCA

ZONE = "cf.example"
TOKEN = "cf-token-dns-edit-0123456789"
READ_ONLY_TOKEN = "cf-token-dns-read-0123456789"


@pytest.fixture(scope="module")
def ca() -> EphemeralCA:
    return EphemeralCA("cloudflare fake CA")


@pytest.fixture
def fake(ca: EphemeralCA) -> Iterator[CloudflareFake]:
    server = CloudflareFake(ca)
    zone = server.add_zone(ZONE)
    other = server.add_zone("other.example")
    server.add_token(TOKEN, [zone, other])
    server.add_token(READ_ONLY_TOKEN, [zone], dns_edit=False)
    with server:
        yield server
    assert server.violations == []


@pytest.fixture
def options(fake: CloudflareFake, tmp_path: Path) -> dict[str, str]:
    return {
        "api_token": TOKEN,
        "api_url": fake.base_url + "/client/v4",
        "ca_bundle": fake.write_ca_bundle(tmp_path),
    }


def provider_for(options: dict[str, str], **overrides: str) -> CloudflareProvider:
    provider = create_provider("cloudflare", {**options, **overrides})
    assert isinstance(provider, CloudflareProvider)
    return provider


class TestCloudflareContract(ProviderContract, UnservedRecordContract):
    @pytest.fixture
    def provider(self, options: dict[str, str]) -> CloudflareProvider:
        return provider_for(options)

    @pytest.fixture
    def zone(self) -> str:
        return ZONE

    @pytest.fixture
    def seed(self, fake: CloudflareFake) -> Seed:
        return lambda host, rtype, value: _add(fake, host, rtype, value)

    @pytest.fixture
    def stored(self, fake: CloudflareFake) -> Stored:
        return lambda host: sorted((r["type"], r["content"]) for r in fake.records_at(host))

    @pytest.fixture
    def seed_unserved(self, fake: CloudflareFake) -> SeedUnserved:
        return lambda host, target: _add(fake, host, "CNAME", target, proxied=True)


def _add(fake: CloudflareFake, host: str, rtype: str, value: str, **extra: object) -> None:
    fake.add_record(fake.zone_named(ZONE), host, rtype, value, **extra)


def _zone(fake: CloudflareFake) -> FakeZone:
    return fake.zone_named(ZONE)


def test_cloudflare_creates_unproxied(
    fake: CloudflareFake, options: dict[str, str], unique_label: str
) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(options).publish(CnameRecord(host, TARGET))

    posts = [r.json() for r in fake.requests if r.method == "POST"]
    assert [body["proxied"] for body in posts] == [False]
    assert [body["name"] for body in posts] == [host]


def test_cloudflare_proxied_conflict_says_fix(
    fake: CloudflareFake, options: dict[str, str], unique_label: str
) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"
    _add(fake, host, "CNAME", TARGET, proxied=True)

    with pytest.raises(DnsConflictError) as caught:
        provider_for(options).publish(CnameRecord(host, TARGET))

    assert "proxied=true" in str(caught.value)
    assert "Turn proxying off (DNS only)" in str(caught.value)


def test_cloudflare_replace_proxied_patches(
    fake: CloudflareFake, options: dict[str, str], unique_label: str
) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"
    _add(fake, host, "CNAME", TARGET, proxied=True)

    result = provider_for(options).publish(CnameRecord(host, TARGET), replace=True)

    assert result.action is PublishAction.REPLACED
    assert [r.method for r in fake.requests if r.method in ("PATCH", "POST", "DELETE")] == ["PATCH"]
    assert [r["proxied"] for r in fake.records_at(host)] == [False]


def test_cloudflare_flattened_record_not_equal(
    fake: CloudflareFake, options: dict[str, str], unique_label: str
) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"
    _add(fake, host, "CNAME", TARGET, settings={"flatten_cname": True})

    with pytest.raises(DnsConflictError) as caught:
        provider_for(options).publish(CnameRecord(host, TARGET))

    assert "flattened=true" in str(caught.value)


@pytest.mark.parametrize("where", ["zone_setting", "dns_settings"])
def test_cloudflare_flatten_all_warns(
    fake: CloudflareFake,
    options: dict[str, str],
    unique_label: str,
    where: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if where == "zone_setting":
        _zone(fake).cname_flattening = "flatten_all"
    else:
        _zone(fake).flatten_all_cnames = True
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    result = provider_for(options).publish(CnameRecord(host, TARGET))

    assert result.action is PublishAction.CREATED
    assert ["flattens all CNAME records" in warning for warning in result.warnings] == [True]
    assert "flattens all CNAME records" in caplog.text


def test_cloudflare_no_flattening_no_warning(options: dict[str, str], unique_label: str) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    result = provider_for(options).publish(CnameRecord(host, TARGET))

    assert result.warnings == ()


def test_cloudflare_zone_id_option(
    fake: CloudflareFake, options: dict[str, str], unique_label: str
) -> None:
    provider = provider_for(options, zone_id=_zone(fake).id)

    assert provider.find_zone(f"selector1._domainkey.{unique_label}.{ZONE}") == ZONE
    assert [r.path for r in fake.requests if r.path.endswith("/zones")] == []


def test_cloudflare_zone_id_wrong_zone(fake: CloudflareFake, options: dict[str, str]) -> None:
    provider = provider_for(options, zone_id=fake.zone_named("other.example").id)

    with pytest.raises(ZoneNotFoundError) as caught:
        provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert "does not contain" in str(caught.value)


def test_cloudflare_wrong_token_hint(
    options: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "cf-token-that-does-not-exist-42"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DnsProviderError) as caught:
        provider_for(options, api_token=wrong).check_access(ZONE)

    assert "rejected the API token" in str(caught.value)
    assert "Zone / DNS / Edit" in str(caught.value)
    assert wrong not in str(caught.value)
    assert wrong not in caplog.text


def test_cloudflare_read_only_token_write_fails(options: dict[str, str], unique_label: str) -> None:
    provider = provider_for(options, api_token=READ_ONLY_TOKEN)

    with pytest.raises(DnsProviderError) as caught:
        provider.publish(CnameRecord(f"selector1._domainkey.{unique_label}.{ZONE}", TARGET))

    assert "HTTP 403" in str(caught.value)
    assert "Zone / DNS / Edit" in str(caught.value)


def test_cloudflare_check_access_reports(options: dict[str, str]) -> None:
    report = provider_for(options).check_access(ZONE)

    assert report.zone == ZONE
    assert report.checks[0] == "Cloudflare reports the API token as active."


def test_cloudflare_expired_token_reported(fake: CloudflareFake, options: dict[str, str]) -> None:
    fake.tokens[TOKEN].status = "expired"

    with pytest.raises(DnsProviderError) as caught:
        provider_for(options).check_access(ZONE)

    assert "as expired" in str(caught.value)


def test_cloudflare_token_from_keyring(options: dict[str, str], keyring_file: Any) -> None:
    keyring_file.set_password("o365dkim", "cf", TOKEN)

    provider = provider_for(options, api_token="keyring:cf")

    assert provider.find_zone(f"selector1._domainkey.{ZONE}") == ZONE


def test_cloudflare_keyring_entry_missing(options: dict[str, str], keyring_file: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        provider_for(options, api_token="keyring:cf")

    assert "o365dkim secret set cf" in str(caught.value)


def test_cloudflare_token_from_environment(
    options: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O365DKIM_CLOUDFLARE_API_TOKEN", TOKEN)
    without_token = {key: value for key, value in options.items() if key != "api_token"}

    provider = provider_for(without_token)

    assert provider.find_zone(f"selector1._domainkey.{ZONE}") == ZONE


def test_cloudflare_token_absent_from_repr(options: dict[str, str]) -> None:
    provider = provider_for(options)

    assert TOKEN not in repr(provider)
    assert TOKEN not in repr(vars(provider))


@pytest.mark.parametrize("ttl", ["0", "20", "86401"])
def test_cloudflare_invalid_ttl_rejected(ttl: str) -> None:
    with pytest.raises(InvalidInputError):
        CloudflareProvider("token", ttl=ttl)


def test_cloudflare_automatic_ttl_sent(
    fake: CloudflareFake, options: dict[str, str], unique_label: str
) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(options, ttl="1").publish(CnameRecord(host, TARGET))

    assert [r["ttl"] for r in fake.records_at(host)] == [1]


def test_cloudflare_untrusted_certificate_rejected(
    fake: CloudflareFake, options: dict[str, str], tmp_path: Path
) -> None:
    other_ca = EphemeralCA("another CA").write_ca_bundle(tmp_path / "other.pem")

    with pytest.raises(DnsProviderError) as caught:
        provider_for(options, ca_bundle=str(other_ca)).find_zone(ZONE)

    assert "cannot be reached" in str(caught.value)
