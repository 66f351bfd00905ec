"""The propagation check: ask every authoritative name server for each selector CNAME.

Only the domain and its parents are looked up through the resolver (SOA, NS and the
servers' addresses). The selector names themselves go straight to the authoritative
servers with recursion desired off, because a recursive resolver asked before the
record exists caches NXDOMAIN for the zone's negative TTL, up to hours (RFC 2308).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from o365dkim.dns.records import CnameRecord, canonical_name, names_equal
from o365dkim.dns.servers import (
    Nameserver,
    is_ip_address,
    make_resolver,
    parse_server,
    query_direct,
)
from o365dkim.dns.zone import (
    NameserverDiscoveryError,
    ZoneSoa,
    discover_nameservers,
    discover_zone,
    resolve_addresses,
    soa_in_response,
)

__all__ = [
    "AnswerState",
    "Nameserver",
    "NameserverDiscoveryError",
    "PropagationChecker",
    "PropagationReport",
    "SelectorAnswer",
    "parse_server",
]

log = logging.getLogger(__name__)

_MAX_PARALLEL_QUERIES = 16


class AnswerState(str, enum.Enum):
    """The outcome of asking one authoritative server for one selector name."""

    MATCH = "match"
    MISSING = "missing"
    DIFFERENT = "different"
    ERROR = "error"


@dataclass(frozen=True)
class SelectorAnswer:
    """One server's answer for one selector CNAME, compared with the expected target."""

    server: Nameserver
    host: str
    expected: str
    found: str | None
    state: AnswerState
    detail: str = ""

    def describe(self) -> str:
        """Return the answer as one readable line."""
        text = f"{self.host} at {self.server}: {self.state.value}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class PropagationReport:
    """The answers of every authoritative server for every selector in one check."""

    answers: tuple[SelectorAnswer, ...]
    # How long resolvers may cache a negative answer from the zone, when known.
    negative_ttl: int | None
    zone: str | None = None

    @property
    def ready(self) -> bool:
        """True when there is at least one answer and every answer matches."""
        return bool(self.answers) and all(a.state is AnswerState.MATCH for a in self.answers)

    @property
    def servers(self) -> list[Nameserver]:
        """The servers that answered, in the order asked, each once."""
        return list(dict.fromkeys(answer.server for answer in self.answers))

    def missing(self) -> list[SelectorAnswer]:
        """Return the answers that do not match yet: missing, different or failed."""
        return [answer for answer in self.answers if answer.state is not AnswerState.MATCH]

    def published(self, host: str) -> bool:
        """Return True when every server returns the expected CNAME for ``host``."""
        for_host = [answer for answer in self.answers if names_equal(answer.host, host)]
        return bool(for_host) and all(a.state is AnswerState.MATCH for a in for_host)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "ready": self.ready,
            "zone": self.zone,
            "negative_ttl": self.negative_ttl,
            "answers": [
                {
                    "server": answer.server.name,
                    "address": answer.server.address,
                    "port": answer.server.port,
                    "host": answer.host,
                    "expected": answer.expected,
                    "found": answer.found,
                    "state": answer.state.value,
                    "detail": answer.detail,
                }
                for answer in self.answers
            ],
        }


class PropagationChecker:
    """Checks that every authoritative server of a domain's zone returns the selector CNAMEs.

    ``nameservers`` replaces discovery with a fixed list of (host, port), for split
    horizon set-ups and tests. ``resolver`` is the bootstrap resolver as (IP address,
    port) pairs, used for discovery and DKIM key lookups; by default it comes from
    /etc/resolv.conf. ``query_timeout`` is in seconds per query.
    Discovery results are cached for the checker's life.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[tuple[str, int]] | None = None,
        resolver: Sequence[tuple[str, int]] | None = None,
        query_timeout: float = 3.0,
    ) -> None:
        if query_timeout <= 0:
            raise ValueError(f"query_timeout must be more than 0 seconds, not {query_timeout}")
        self._explicit = list(nameservers) if nameservers is not None else None
        self._resolver_servers = list(resolver) if resolver is not None else None
        self._timeout = query_timeout
        self._resolver: dns.resolver.Resolver | None = None
        self._explicit_resolved: list[Nameserver] | None = None
        self._zone_of_domain: dict[str, str] = {}
        self._nameservers_of_zone: dict[str, list[Nameserver]] = {}
        self._soa_of_domain: dict[str, ZoneSoa] = {}
        self._soa_warned: set[str] = set()

    # -- discovery --------------------------------------------------------------------

    def nameservers_for(self, domain: str) -> list[Nameserver]:
        """Return the servers to check for ``domain``: the explicit list, or its zone's NS set."""
        if self._explicit is not None:
            return self._explicit_nameservers()
        zone = self._discover_zone(canonical_name(domain))
        if zone not in self._nameservers_of_zone:
            servers = discover_nameservers(zone, self._get_resolver())
            log.info("name servers of %s: %s", zone, ", ".join(str(s) for s in servers))
            self._nameservers_of_zone[zone] = servers
        return list(self._nameservers_of_zone[zone])

    def _discover_zone(self, domain: str) -> str:
        if domain not in self._zone_of_domain:
            self._zone_of_domain[domain] = discover_zone(domain, self._get_resolver())
        return self._zone_of_domain[domain]

    def _explicit_nameservers(self) -> list[Nameserver]:
        if self._explicit_resolved is None:
            resolved: list[Nameserver] = []
            for host, port in self._explicit or []:
                if is_ip_address(host):
                    resolved.append(Nameserver(host, host, port))
                    continue
                addresses = resolve_addresses(host, self._get_resolver())
                if not addresses:
                    raise NameserverDiscoveryError(
                        f"The name server {host} has no address.",
                        hint="Give its IP address with --nameserver instead.",
                    )
                resolved.extend(Nameserver(host, address, port) for address in addresses)
            self._explicit_resolved = resolved
        return list(self._explicit_resolved)

    def _zone_soa(self, domain: str, servers: Sequence[Nameserver]) -> ZoneSoa | None:
        """Ask the authoritative servers for the SOA of ``domain``; the first usable answer wins."""
        if domain in self._soa_of_domain:
            return self._soa_of_domain[domain]
        for server in servers:
            soa = self._soa_at(server, domain)
            if soa is not None and soa.zone != domain:
                # Negative answers to SOA queries may carry TTL 0 (BIND's zero-soa-ttl),
                # so the apex's own SOA gives the TTL that resolvers apply.
                soa = self._soa_at(server, soa.zone) or soa
            if soa is not None:
                self._soa_of_domain[domain] = soa
                return soa
        if domain not in self._soa_warned:
            self._soa_warned.add(domain)
            log.warning("no authoritative server returned the SOA of %s", domain)
        return None

    def _soa_at(self, server: Nameserver, name: str) -> ZoneSoa | None:
        try:
            response = query_direct(name, "SOA", server.address, server.port, timeout=self._timeout)
        except (OSError, dns.exception.DNSException) as err:
            log.debug("SOA of %s at %s failed: %s", name, server, err)
            return None
        return soa_in_response(response, name)

    def _get_resolver(self) -> dns.resolver.Resolver:
        if self._resolver is None:
            self._resolver = make_resolver(self._resolver_servers, self._timeout)
        return self._resolver

    # -- checking ---------------------------------------------------------------------

    def check(self, domain: str, records: Sequence[CnameRecord]) -> PropagationReport:
        """Ask every server for every record once and compare the answers."""
        domain = canonical_name(domain)
        servers = self.nameservers_for(domain)
        soa = self._zone_soa(domain, servers)

        # Addresses of one NS host are alternatives: the first one that answers counts,
        # so an IPv6 address without a route does not block a host that IPv4 reaches.
        groups = list(_group_by_name(servers).values())
        jobs = [(group, record) for group in groups for record in records]
        answers: tuple[SelectorAnswer, ...] = ()
        if jobs:
            workers = min(_MAX_PARALLEL_QUERIES, len(jobs))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                answers = tuple(pool.map(lambda job: self._ask_host(*job), jobs))

        report = PropagationReport(
            answers, soa.negative_ttl if soa else None, soa.zone if soa else None
        )
        for answer in report.missing():
            log.debug("pending: %s", answer.describe())
        return report

    def wait(
        self,
        domain: str,
        records: Sequence[CnameRecord],
        *,
        timeout: float,
        interval: float,
        on_poll: Callable[[PropagationReport], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> PropagationReport:
        """Check every ``interval`` seconds until ready or ``timeout`` seconds have passed.

        Returns the last report, which is not ready when the time ran out.
        """
        deadline = clock() + timeout
        while True:
            report = self.check(domain, records)
            if on_poll is not None:
                on_poll(report)
            if report.ready:
                return report

            remaining = deadline - clock()
            if remaining <= 0:
                log.info("%s: propagation not complete after %.0f s", domain, timeout)
                return report
            pause = min(interval, remaining)
            log.info(
                "%s: %d of %d answers pending, next check in %.1f s",
                domain,
                len(report.missing()),
                len(report.answers),
                pause,
            )
            sleep(pause)

    def _ask_host(self, addresses: Sequence[Nameserver], record: CnameRecord) -> SelectorAnswer:
        failures: list[SelectorAnswer] = []
        for server in addresses:
            answer = self._ask(server, record)
            if answer.state is not AnswerState.ERROR:
                return answer
            failures.append(answer)
        if len(failures) == 1:
            return failures[0]
        detail = "; ".join(f"{f.server.address}: {f.detail}" for f in failures)
        return SelectorAnswer(
            failures[0].server, record.host, record.target, None, AnswerState.ERROR, detail
        )

    def _ask(self, server: Nameserver, record: CnameRecord) -> SelectorAnswer:
        try:
            response = query_direct(
                record.host, "CNAME", server.address, server.port, timeout=self._timeout
            )
        except dns.exception.Timeout:
            return _error(server, record, f"timed out after {self._timeout:g} s")
        except (OSError, dns.exception.DNSException) as err:
            return _error(server, record, f"query failed: {err}")
        return _classify(server, record, response)

    # -- DKIM keys --------------------------------------------------------------------

    def key_published(self, target: str) -> bool | None:
        """Return whether a DKIM public key (TXT) is published at ``target``.

        Asks the bootstrap resolver, because the target lives in Microsoft's zones and
        is no selector name of the customer's. Returns None when the lookup fails.
        """
        try:
            answer = self._get_resolver().resolve(canonical_name(target), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return False
        except dns.exception.DNSException as err:
            log.warning("looking up the DKIM key at %s failed: %s", target, err)
            return None
        texts = [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]
        return any(is_dkim_key(text) for text in texts)


def is_dkim_key(text: str) -> bool:
    """Return True when a TXT string is a DKIM key record with a non-empty public key.

    RFC 6376 section 3.6.1: ``v`` is optional but must be DKIM1 when present, and an
    empty ``p=`` means the key was revoked.
    """
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(value.split())
    if tags.get("v", "DKIM1") != "DKIM1":
        return False
    return bool(tags.get("p"))


def _classify(
    server: Nameserver, record: CnameRecord, response: dns.message.Message
) -> SelectorAnswer:
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return SelectorAnswer(
            server, record.host, record.target, None, AnswerState.MISSING, "NXDOMAIN"
        )
    if rcode != dns.rcode.NOERROR:
        return _error(server, record, f"the server returned {dns.rcode.to_text(rcode)}")
    if not response.flags & dns.flags.AA:
        return _error(
            server,
            record,
            "the answer is not authoritative (AA flag not set), so this "
            "server does not serve the zone",
        )

    target = _cname_target(response, record.host)
    if target is None:
        return SelectorAnswer(
            server,
            record.host,
            record.target,
            None,
            AnswerState.MISSING,
            "no CNAME at the name (NODATA)",
        )
    if names_equal(target, record.target):
        return SelectorAnswer(server, record.host, record.target, target, AnswerState.MATCH)
    return SelectorAnswer(
        server,
        record.host,
        record.target,
        target,
        AnswerState.DIFFERENT,
        f"points to {target} instead",
    )


def _cname_target(response: dns.message.Message, host: str) -> str | None:
    owner = dns.name.from_text(host)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == owner:
            return canonical_name(rrset[0].target.to_text())
    return None


def _error(server: Nameserver, record: CnameRecord, detail: str) -> SelectorAnswer:
    return SelectorAnswer(server, record.host, record.target, None, AnswerState.ERROR, detail)


def _group_by_name(servers: Sequence[Nameserver]) -> dict[tuple[str, int], list[Nameserver]]:
    groups: dict[tuple[str, int], list[Nameserver]] = {}
    for server in servers:
        groups.setdefault((server.name, server.port), []).append(server)
    return groups
