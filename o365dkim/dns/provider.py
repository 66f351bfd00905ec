"""The DNS provider interface and the registry of built-in and installed providers."""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, ClassVar

from o365dkim.dns.records import (
    CnameRecord,
    ExistingRecord,
    PlanAction,
    PublishAction,
    PublishPlan,
    PublishResult,
    canonical_name,
    names_equal,
)
from o365dkim.errors import DnsConflictError, DnsReadBackError, UnknownProviderError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "o365dkim.dns_providers"

_BUILT_IN: dict[str, str] = {
    "manual": "o365dkim.dns.manual:ManualProvider",
    "rfc2136": "o365dkim.dns.rfc2136:Rfc2136Provider",
    "sandbox": "o365dkim.dns.sandbox:SandboxProvider",
}


class DnsProvider(abc.ABC):
    """A place where DNS records are published.

    Subclasses implement three small operations; ``publish`` combines them into the
    rules every provider follows: find the zone, read what is at the name, create when
    absent, leave an equal CNAME alone, stop on anything else unless ``replace`` is set,
    and read the record back after writing.
    """

    #: The name users give with ``--dns-provider``.
    name: ClassVar[str]
    #: True when the vendor API takes record names relative to the zone.
    relative_names: ClassVar[bool] = False

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> DnsProvider:
        """Build the provider from string settings (options, environment, profile)."""
        return cls(**options)

    @abc.abstractmethod
    def find_zone(self, host: str) -> str:
        """Return the zone at this provider that contains ``host`` (longest match)."""

    @abc.abstractmethod
    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record at ``host`` (absolute name) in ``zone``, of any type."""

    @abc.abstractmethod
    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Create ``record`` in ``zone``, first removing the records in ``remove``."""

    def publish(self, record: CnameRecord, *, replace: bool = False) -> PublishResult:
        """Make ``record`` exist at the provider, following the conflict rules."""
        zone = self.find_zone(record.host)
        existing = self.list_records(zone, record.host)
        if _has_equal_cname(existing, record):
            log.info("%s: %s already points to %s", self.name, record.host, record.target)
            return PublishResult(record, PublishAction.UNCHANGED, zone)

        if existing and not replace:
            found = "; ".join(item.describe() for item in existing)
            raise DnsConflictError(
                f"{record.host} already has a record that differs from the CNAME to "
                f"{record.target}: {found}.",
                hint="Remove or correct it at the DNS provider, or rerun with --replace "
                "to overwrite it.",
            )

        self.write_cname(zone, record, existing)
        self.verify_written(zone, record)
        action = PublishAction.REPLACED if existing else PublishAction.CREATED
        log.info("%s: %s %s CNAME %s", self.name, action.value, record.host, record.target)
        return PublishResult(record, action, zone, tuple(existing))

    def plan(self, host: str, target: str | None, *, replace: bool = False) -> PublishPlan:
        """Return what ``publish`` would do at ``host``, reading only.

        ``target`` is None when Exchange has not assigned one yet; then any record at the
        name is in the way.
        """
        zone = self.find_zone(host)
        existing = tuple(self.list_records(zone, host))
        if target is not None and _has_equal_cname(existing, CnameRecord(host, target)):
            return PublishPlan(host, PlanAction.UNCHANGED, existing)
        if not existing:
            return PublishPlan(host, PlanAction.CREATE)
        action = PlanAction.REPLACE if replace else PlanAction.CONFLICT
        return PublishPlan(host, action, existing)

    def verify_written(self, zone: str, record: CnameRecord) -> None:
        """Read ``record`` back and raise DnsReadBackError unless it is stored as intended."""
        stored = self.list_records(zone, record.host)
        if _has_equal_cname(stored, record):
            return

        doubled = f"{record.host}.{canonical_name(zone)}"
        doubled_record = CnameRecord(doubled, record.target, record.ttl)
        if _has_equal_cname(self.list_records(zone, doubled), doubled_record):
            raise DnsReadBackError(
                f"{self.name} stored the record as {doubled}: the zone name was appended twice.",
                hint=f"Delete {doubled} and give the provider the name relative to {zone}.",
            )
        found = "; ".join(item.describe() for item in stored) or "nothing"
        raise DnsReadBackError(
            f"After writing {record.host} CNAME {record.target}, {self.name} returns {found}.",
            hint="Check the record at the provider; a relative target or a proxied record "
            "must be corrected by hand.",
        )


def _has_equal_cname(records: Sequence[ExistingRecord], record: CnameRecord) -> bool:
    return any(
        item.rtype.upper() == "CNAME"
        and names_equal(item.name, record.host)
        and names_equal(item.value, record.target)
        and item.attributes.get("proxied") != "true"
        for item in records
    )


def available_providers() -> dict[str, str]:
    """Return provider names mapped to ``module:Class``, built-in ones first."""
    found = dict(_BUILT_IN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def load_provider_class(name: str) -> type[DnsProvider]:
    """Import the provider class registered under ``name``."""
    providers = available_providers()
    if name not in providers:
        raise UnknownProviderError(
            f"Unknown DNS provider '{name}'. Available: {', '.join(sorted(providers))}."
        )
    module_name, _, class_name = providers[name].partition(":")
    provider_class: Any = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(provider_class, type) and issubclass(provider_class, DnsProvider)):
        raise UnknownProviderError(
            f"The DNS provider '{name}' ({providers[name]}) is not a DnsProvider subclass."
        )
    return provider_class


def create_provider(name: str, options: Mapping[str, str]) -> DnsProvider:
    """Build the provider registered under ``name`` from its string options."""
    return load_provider_class(name).from_options(options)
