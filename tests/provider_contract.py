"""The tests every DNS provider that writes records must pass.

A provider's test file subclasses ProviderContract and supplies four fixtures:

- ``provider``: the DnsProvider under test.
- ``zone``: a zone the provider can write, with ``marketing.<zone>`` inside it.
- ``seed``: ``seed(host, rtype, value)`` puts a record in place without the provider.
- ``stored``: ``stored(host)`` returns [(rtype, value)] at ``host`` as the server stores it,
  read without the provider.

Providers whose records can be proxied, flattened or disabled also override
``seed_unserved``: ``seed_unserved(host, target)`` puts a CNAME to ``target`` at ``host``
that DNS does not serve as a CNAME; UnservedRecordContract contains those cases.

The read-back cases seed what a faulty write would have left (the zone appended to the
name, or to the target) and call ``verify_written``, so they run against each provider's
real read path.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import CnameRecord, PublishAction, canonical_name
from o365dkim.errors import DnsConflictError, DnsReadBackError, ZoneNotFoundError

Seed = Callable[[str, str, str], None]
Stored = Callable[[str], list[tuple[str, str]]]
SeedUnserved = Callable[[str, str], None]

TARGET = "selector1-contoso-com._domainkey.contoso.n-v1.dkim.mail.microsoft"
OTHER_TARGET = "selector1-other-com._domainkey.other.n-v1.dkim.mail.microsoft"


def cnames(stored: list[tuple[str, str]]) -> list[str]:
    return [canonical_name(value) for rtype, value in stored if rtype == "CNAME"]


class ProviderContract:
    """Shared provider tests; not collected on its own because the name lacks "Test"."""

    @pytest.fixture
    def host(self, zone: str, unique_label: str) -> str:
        return f"selector1._domainkey.{unique_label}.{zone}"

    def test_publish_creates_cname(self, provider: DnsProvider, host: str, stored: Stored) -> None:
        result = provider.publish(CnameRecord(host, TARGET))

        assert result.action is PublishAction.CREATED
        assert cnames(stored(host)) == [TARGET]

    def test_publish_returns_zone(self, provider: DnsProvider, host: str, zone: str) -> None:
        result = provider.publish(CnameRecord(host, TARGET))

        assert result.zone == zone

    def test_publish_twice_unchanged(self, provider: DnsProvider, host: str) -> None:
        provider.publish(CnameRecord(host, TARGET))

        second = provider.publish(CnameRecord(host, TARGET))

        assert second.action is PublishAction.UNCHANGED

    def test_publish_case_and_dot_unchanged(
        self, provider: DnsProvider, host: str, seed: Seed, stored: Stored
    ) -> None:
        seed(host, "CNAME", TARGET.upper() + ".")

        result = provider.publish(CnameRecord(host.upper(), TARGET))

        assert result.action is PublishAction.UNCHANGED
        assert len(cnames(stored(host))) == 1

    def test_publish_other_cname_conflict(
        self, provider: DnsProvider, host: str, seed: Seed, stored: Stored
    ) -> None:
        seed(host, "CNAME", OTHER_TARGET + ".")

        with pytest.raises(DnsConflictError) as caught:
            provider.publish(CnameRecord(host, TARGET))

        assert OTHER_TARGET in str(caught.value)
        assert cnames(stored(host)) == [OTHER_TARGET]

    def test_publish_txt_conflict(
        self, provider: DnsProvider, host: str, seed: Seed, stored: Stored
    ) -> None:
        seed(host, "TXT", '"left-over verification"')

        with pytest.raises(DnsConflictError) as caught:
            provider.publish(CnameRecord(host, TARGET))

        assert "TXT" in str(caught.value)
        assert "left-over verification" in str(caught.value)
        assert cnames(stored(host)) == []

    def test_publish_other_type_conflict(
        self, provider: DnsProvider, host: str, seed: Seed
    ) -> None:
        # CAA, because BIND's check-names rejects A records at names with underscores.
        seed(host, "CAA", '0 issue "ca.example.net"')

        with pytest.raises(DnsConflictError) as caught:
            provider.publish(CnameRecord(host, TARGET))

        assert "CAA" in str(caught.value)

    def test_publish_replace_overwrites_cname(
        self, provider: DnsProvider, host: str, seed: Seed, stored: Stored
    ) -> None:
        seed(host, "CNAME", OTHER_TARGET + ".")

        result = provider.publish(CnameRecord(host, TARGET), replace=True)

        assert result.action is PublishAction.REPLACED
        assert [canonical_name(item.value) for item in result.replaced] == [OTHER_TARGET]
        assert cnames(stored(host)) == [TARGET]

    def test_publish_replace_removes_txt(
        self, provider: DnsProvider, host: str, seed: Seed, stored: Stored
    ) -> None:
        seed(host, "TXT", '"left-over verification"')

        provider.publish(CnameRecord(host, TARGET), replace=True)

        assert [rtype for rtype, _ in stored(host)] == ["CNAME"]

    def test_publish_subdomain_keeps_label(
        self, provider: DnsProvider, zone: str, unique_label: str, stored: Stored
    ) -> None:
        # The subdomain lives inside the parent zone, so its label stays in the host.
        host = f"{unique_label}._domainkey.marketing.{zone}"

        result = provider.publish(CnameRecord(host, TARGET))

        assert result.zone == zone
        assert cnames(stored(host)) == [TARGET]

    def test_publish_unknown_zone_raises(self, provider: DnsProvider, unique_label: str) -> None:
        with pytest.raises(ZoneNotFoundError):
            provider.publish(CnameRecord(f"selector1._domainkey.{unique_label}.invalid", TARGET))

    def test_list_records_reads_back(self, provider: DnsProvider, host: str, zone: str) -> None:
        provider.publish(CnameRecord(host, TARGET))

        found = provider.list_records(zone, host)

        assert [(item.rtype, canonical_name(item.value)) for item in found] == [("CNAME", TARGET)]

    def test_list_records_empty_name(self, provider: DnsProvider, host: str, zone: str) -> None:
        assert provider.list_records(zone, host) == []

    def test_find_zone_longest_match(self, provider: DnsProvider, host: str, zone: str) -> None:
        assert provider.find_zone(host) == zone

    # -- F6: the zone appended to the name or the target, found by reading back ----------

    def test_read_back_doubled_zone_reported(
        self, provider: DnsProvider, host: str, zone: str, seed: Seed
    ) -> None:
        doubled = f"{host}.{zone}"
        seed(doubled, "CNAME", TARGET + ".")

        with pytest.raises(DnsReadBackError) as caught:
            provider.verify_written(zone, CnameRecord(host, TARGET))

        assert doubled in str(caught.value)
        assert "appended twice" in str(caught.value)

    def test_read_back_relative_target_reported(
        self, provider: DnsProvider, host: str, zone: str, seed: Seed
    ) -> None:
        seed(host, "CNAME", f"{TARGET}.{zone}.")

        with pytest.raises(DnsReadBackError) as caught:
            provider.verify_written(zone, CnameRecord(host, TARGET))

        assert f"{TARGET}.{zone}" in str(caught.value)
        assert "appended to the target" in str(caught.value)

    def test_publish_doubled_leftover_warns(
        self, provider: DnsProvider, host: str, zone: str, seed: Seed, stored: Stored
    ) -> None:
        doubled = f"{host}.{zone}"
        seed(doubled, "CNAME", TARGET + ".")

        result = provider.publish(CnameRecord(host, TARGET))

        assert result.action is PublishAction.CREATED
        assert cnames(stored(host)) == [TARGET]
        assert [doubled in warning for warning in result.warnings] == [True]

    # -- F7: the record must be served as a plain CNAME ---------------------------------

    def test_publish_writes_plain_cname(self, provider: DnsProvider, host: str, zone: str) -> None:
        provider.publish(CnameRecord(host, TARGET))

        found = provider.list_records(zone, host)

        assert [(item.rtype, item.attributes) for item in found] == [("CNAME", {})]


class UnservedRecordContract:
    """F7 cases for providers that can store a CNAME that DNS does not serve as one.

    Mixed into a provider's test class next to ProviderContract; the class defines a
    ``seed_unserved`` fixture that stores a proxied, flattened or disabled record.
    """

    def test_publish_unserved_cname_conflict(
        self, provider: DnsProvider, host: str, seed_unserved: SeedUnserved
    ) -> None:
        seed_unserved(host, TARGET)

        with pytest.raises(DnsConflictError) as caught:
            provider.publish(CnameRecord(host, TARGET))

        assert re.search(r"Turn \w+ off", str(caught.value))
        assert "--replace" in str(caught.value)

    def test_publish_replace_unserved_cname(
        self, provider: DnsProvider, host: str, zone: str, seed_unserved: SeedUnserved
    ) -> None:
        seed_unserved(host, TARGET)

        result = provider.publish(CnameRecord(host, TARGET), replace=True)

        assert result.action is PublishAction.REPLACED
        found = provider.list_records(zone, host)
        assert [(item.rtype, item.attributes) for item in found] == [("CNAME", {})]
