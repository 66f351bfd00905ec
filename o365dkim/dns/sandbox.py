"""The sandbox provider: writes to the in-process sandbox DNS server used by ``--sandbox``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import CnameRecord, ExistingRecord, canonical_name
from o365dkim.errors import ConfigurationError, ZoneNotFoundError
from o365dkim.sandbox.dns_server import SandboxDnsServer

log = logging.getLogger(__name__)


class SandboxProvider(DnsProvider):
    """Publishes records on a SandboxDnsServer; its primary serves each change at once."""

    name = "sandbox"

    def __init__(self, server: SandboxDnsServer) -> None:
        self.server = server

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> SandboxProvider:
        """Raise, because the sandbox server exists only inside a ``--sandbox`` run."""
        raise ConfigurationError(
            "The sandbox provider is available only with --sandbox.",
            hint="Run with --sandbox, or choose another DNS provider.",
        )

    def find_zone(self, host: str) -> str:
        """Return the served zone that contains ``host`` (longest match)."""
        zone = self.server.zone_for(host)
        if zone is None:
            raise ZoneNotFoundError(
                f"The sandbox DNS server serves no zone containing {canonical_name(host)}.",
                hint=f"Sandbox zones: {', '.join(self.server.zones) or 'none'}.",
            )
        return zone

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record at ``host`` as the primary serves it."""
        return [
            ExistingRecord(canonical_name(host), rtype, value, ttl)
            for rtype, value, ttl in self.server.records(host)
        ]

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Delete the rrsets of ``remove``, then set the CNAME with an absolute target."""
        for rtype in sorted({item.rtype.upper() for item in remove}):
            self.server.delete_rrset(record.host, rtype)
        self.server.set_rrset(record.host, "CNAME", [record.target + "."], ttl=record.ttl)
        log.debug("sandbox: %s CNAME %s written", record.host, record.target)
