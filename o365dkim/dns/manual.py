"""The manual provider: writes nothing, so a person publishes the records by hand."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import (
    CnameRecord,
    ExistingRecord,
    PlanAction,
    PublishAction,
    PublishPlan,
    PublishResult,
    canonical_name,
)
from o365dkim.errors import ConfigurationError, DnsProviderError

log = logging.getLogger(__name__)

_SELECTOR_INFIX = "._domainkey."


class ManualProvider(DnsProvider):
    """Publishes nothing; ``publish`` reports MANUAL and the propagation wait does the rest.

    The caller shows the records to paste (``CnameRecord.zone_file_line``) and then
    checks the authoritative servers until a person has published them.
    """

    name = "manual"

    def __init__(self) -> None:
        """Take no settings, because nothing is sent anywhere."""

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> ManualProvider:
        """Build the provider; it takes no options, so any option is a mistake."""
        if options:
            raise ConfigurationError(
                f"The manual provider takes no options, but got: {', '.join(sorted(options))}.",
                hint="Remove the DNS provider options, or choose another provider.",
            )
        return cls()

    def find_zone(self, host: str) -> str:
        """Return the mail domain of a selector host, or ``host`` itself for other names.

        The real zone apex is unknown without asking DNS. The registrable domain needs
        the Public Suffix List, because ``contoso.co.uk`` has three labels. So the guess
        is the domain the selector belongs to, which always contains the record.
        """
        name = canonical_name(host)
        _, sep, domain = name.partition(_SELECTOR_INFIX)
        return domain if sep and domain else name

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return no records: this provider cannot read the DNS host's data."""
        return []

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Raise, because ``publish`` never writes and nothing else may."""
        raise DnsProviderError(
            f"The manual provider cannot write {record.host}.",
            hint=f"Publish it at your DNS host: {record.zone_file_line()}",
        )

    def plan(self, host: str, target: str | None, *, replace: bool = False) -> PublishPlan:
        """Return MANUAL: a person publishes the record, and nothing can be read here."""
        return PublishPlan(canonical_name(host), PlanAction.MANUAL)

    def publish(self, record: CnameRecord, *, replace: bool = False) -> PublishResult:
        """Return a MANUAL result without writing; ``replace`` has nothing to act on."""
        zone = self.find_zone(record.host)
        log.info("manual: publish %s by hand", record.zone_file_line())
        return PublishResult(record, PublishAction.MANUAL, zone)
