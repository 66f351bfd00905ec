"""The DNS provider interface and the registry of built-in and installed providers."""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, ClassVar

from o365dkim.dns.records import (
    AccessReport,
    CnameRecord,
    ExistingRecord,
    PlanAction,
    PublishAction,
    PublishPlan,
    PublishResult,
    canonical_name,
    names_equal,
)
from o365dkim.errors import DnsConflictError, DnsError, DnsReadBackError, UnknownProviderError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "o365dkim.dns_providers"
#: ``lexicon:NAME`` selects the dns-lexicon provider NAME through the lexicon bridge.
LEXICON_PREFIX = "lexicon:"

_BUILT_IN: dict[str, str] = {
    "manual": "o365dkim.dns.manual:ManualProvider",
    "rfc2136": "o365dkim.dns.rfc2136:Rfc2136Provider",
    "sandbox": "o365dkim.dns.sandbox:SandboxProvider",
    "powerdns": "o365dkim.dns.powerdns:PowerDnsProvider",
    "cloudflare": "o365dkim.dns.cloudflare:CloudflareProvider",
    "route53": "o365dkim.dns.route53:Route53Provider",
    "azure": "o365dkim.dns.azure:AzureDnsProvider",
}
#: Attributes of an ExistingRecord under which DNS answers do not return the CNAME as stored.
_NOT_SERVED_AS_CNAME = ("proxied", "flattened", "disabled")


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
                hint=self.conflict_hint(record, existing),
            )

        self.write_cname(zone, record, existing)
        self.verify_written(zone, record)
        action = PublishAction.REPLACED if existing else PublishAction.CREATED
        log.info("%s: %s %s CNAME %s", self.name, action.value, record.host, record.target)
        warnings = self.leftover_warnings(zone, record)
        return PublishResult(record, action, zone, tuple(existing), warnings)

    def conflict_hint(self, record: CnameRecord, existing: Sequence[ExistingRecord]) -> str:
        """Return the fix to show when ``existing`` records block ``record``."""
        if any(_not_served_as_cname(item) for item in existing):
            flags = sorted(
                {key for item in existing for key in _NOT_SERVED_AS_CNAME if _flag(item, key)}
            )
            return (
                f"The record at {record.host} is {' and '.join(flags)}, so DNS answers do not "
                "return it as a CNAME. Turn that off at the DNS provider, or rerun with "
                "--replace to write a plain CNAME."
            )
        return "Remove or correct it at the DNS provider, or rerun with --replace to overwrite it."

    def leftover_warnings(self, zone: str, record: CnameRecord) -> tuple[str, ...]:
        """Return a warning when records exist at the selector name with the zone doubled.

        Such records are left over from a tool that gave a relative-name API the full
        name; they do no harm to signing but show that tool's mistake.
        """
        doubled = f"{record.host}.{canonical_name(zone)}"
        try:
            leftovers = self.list_records(zone, doubled)
        except DnsError as err:
            log.debug("%s: skipped the check for records at %s: %s", self.name, doubled, err)
            return ()
        if not leftovers:
            return ()
        message = (
            f"{doubled} has {len(leftovers)} record(s) with the zone name appended twice, "
            f"probably left by an earlier tool; delete them at the DNS provider."
        )
        log.warning("%s: %s", self.name, message)
        return (message,)

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
        """Read ``record`` back and raise DnsReadBackError unless it is stored as intended.

        Three known faults get their own message: the zone appended to the name, the
        zone appended to the target (a target sent without its final dot), and a record
        that is proxied, flattened or disabled.
        """
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
        for item in stored:
            _raise_if_known_fault(self.name, zone, record, item)
        found = "; ".join(item.describe() for item in stored) or "nothing"
        raise DnsReadBackError(
            f"After writing {record.host} CNAME {record.target}, {self.name} returns {found}.",
            hint="Check the record at the provider and correct it by hand.",
        )

    def check_access(self, zone: str) -> AccessReport:
        """Check with read-only calls that the credentials can find ``zone`` and read it.

        Providers override this to add vendor checks (token status, zone settings).
        Write permission cannot be proven without writing, so the report lists it as
        not checked.
        """
        found = self.find_zone(zone)
        records = self.list_records(found, zone)
        return AccessReport(
            self.name,
            found,
            (
                f"Found the zone {found} containing {canonical_name(zone)}.",
                f"Read {len(records)} record(s) at {canonical_name(zone)}.",
            ),
            ("Write permission is not checked, because that needs a write.",),
        )


def _raise_if_known_fault(
    provider: str, zone: str, record: CnameRecord, item: ExistingRecord
) -> None:
    if item.rtype.upper() != "CNAME":
        return
    relative_target = f"{record.target}.{canonical_name(zone)}"
    if names_equal(item.value, relative_target):
        raise DnsReadBackError(
            f"{provider} stored the target of {record.host} as {relative_target}: the zone "
            "name was appended to the target.",
            hint=f"Set the target to {record.target}. (absolute, with the final dot) at "
            "the provider.",
        )
    flags = [key for key in _NOT_SERVED_AS_CNAME if _flag(item, key)]
    if names_equal(item.value, record.target) and flags:
        raise DnsReadBackError(
            f"{provider} stored {record.host} as a {' and '.join(flags)} record, so DNS "
            "answers will not return the CNAME.",
            hint=f"Turn {' and '.join(flags)} off for {record.host} at the provider.",
        )


def _has_equal_cname(records: Sequence[ExistingRecord], record: CnameRecord) -> bool:
    return any(
        item.rtype.upper() == "CNAME"
        and names_equal(item.name, record.host)
        and names_equal(item.value, record.target)
        and not _not_served_as_cname(item)
        for item in records
    )


def _flag(item: ExistingRecord, key: str) -> bool:
    return item.attributes.get(key) == "true"


def _not_served_as_cname(item: ExistingRecord) -> bool:
    return any(_flag(item, key) for key in _NOT_SERVED_AS_CNAME)


def available_providers() -> dict[str, str]:
    """Return provider names mapped to ``module:Class``, built-in ones first."""
    found = dict(_BUILT_IN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def load_provider_class(name: str) -> type[DnsProvider]:
    """Import the provider class registered under ``name``; ``lexicon:NAME`` builds one."""
    if name.startswith(LEXICON_PREFIX):
        from o365dkim.dns.lexicon import lexicon_provider_class

        return lexicon_provider_class(name[len(LEXICON_PREFIX) :])
    providers = available_providers()
    if name not in providers:
        raise UnknownProviderError(
            f"Unknown DNS provider '{name}'. Available: {', '.join(sorted(providers))}, "
            f"or {LEXICON_PREFIX}NAME for a dns-lexicon provider."
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
