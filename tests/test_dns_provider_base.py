"""The rules DnsProvider.publish applies for every provider: read-back and the F6 doubled zone.

The providers here are small in-memory subclasses written for these tests, because the
faults they stand for (a vendor API that appends the zone, or stores a relative target)
cannot be produced by BIND or the sandbox server.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from o365dkim.dns.provider import DnsProvider, create_provider, load_provider_class
from o365dkim.dns.records import CnameRecord, ExistingRecord, PublishAction
from o365dkim.errors import DnsReadBackError, UnknownProviderError

ZONE = "contoso.com"
RECORD = CnameRecord(
    "selector1._domainkey.contoso.com",
    "selector1-contoso-com._domainkey.contoso.n-v1.dkim.mail.microsoft",
)


class MemoryProvider(DnsProvider):
    """Stores records in a dict keyed by the name the 'vendor API' received."""

    name = "memory"
    relative_names = True

    def __init__(self) -> None:
        self.store: dict[str, ExistingRecord] = {}

    def find_zone(self, host: str) -> str:
        return ZONE

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        found = self.store.get(host)
        return [found] if found else []

    def stored_name(self, zone: str, host: str) -> str:
        return host

    def stored_target(self, target: str) -> str:
        return target

    def write_cname(
        self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]
    ) -> None:
        name = self.stored_name(zone, record.host)
        self.store[name] = ExistingRecord(name, "CNAME", self.stored_target(record.target))


class ZoneAppendingProvider(MemoryProvider):
    """F6: a relative-name API given the absolute host appends the zone once more."""

    def stored_name(self, zone: str, host: str) -> str:
        return f"{host}.{zone}"


class RelativeTargetProvider(MemoryProvider):
    """A target written without the final dot, which the zone then makes relative."""

    def stored_target(self, target: str) -> str:
        return f"{target}.{ZONE}"


def test_publish_creates_and_reads_back() -> None:
    provider = MemoryProvider()
    result = provider.publish(RECORD)
    assert result.action is PublishAction.CREATED
    assert provider.publish(RECORD).action is PublishAction.UNCHANGED


def test_publish_detects_doubled_zone() -> None:
    provider = ZoneAppendingProvider()
    with pytest.raises(DnsReadBackError) as caught:
        provider.publish(RECORD)
    message = str(caught.value)
    assert "selector1._domainkey.contoso.com.contoso.com" in message
    assert "appended twice" in message
    assert "relative to contoso.com" in message


def test_publish_detects_relative_target() -> None:
    provider = RelativeTargetProvider()
    with pytest.raises(DnsReadBackError) as caught:
        provider.publish(RECORD)
    assert "dkim.mail.microsoft.contoso.com" in str(caught.value)


def test_proxied_equal_cname_not_unchanged() -> None:
    """F7 rule in the base class: a proxied record never counts as the published CNAME."""
    provider = MemoryProvider()
    provider.store[RECORD.host] = ExistingRecord(
        RECORD.host, "CNAME", RECORD.target, attributes={"proxied": "true"}
    )
    with pytest.raises(Exception, match="proxied=true"):
        provider.publish(RECORD)


def test_unknown_provider_lists_available() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        create_provider("nosuch", {})
    assert "manual" in str(caught.value)
    assert "rfc2136" in str(caught.value)


def test_builtin_providers_load() -> None:
    for name in ("manual", "rfc2136", "sandbox"):
        assert load_provider_class(name).name == name


def test_entry_point_provider_loads(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A third-party package registers a provider in the o365dkim.dns_providers group."""
    (tmp_path / "acme_dns.py").write_text(
        "from o365dkim.dns.manual import ManualProvider\n"
        "class AcmeProvider(ManualProvider):\n"
        "    name = 'acme'\n",
        encoding="utf-8",
    )
    dist = tmp_path / "acme_dns-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-dns\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[o365dkim.dns_providers]\nacme = acme_dns:AcmeProvider\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    provider = create_provider("acme", {})
    assert type(provider).__name__ == "AcmeProvider"
    assert provider.name == "acme"
