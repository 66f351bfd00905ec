"""Zone discovery: a domain's zone apex, its negative TTL and its authoritative name servers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import dns.rrset

from o365dkim.dns.records import canonical_name
from o365dkim.dns.servers import Nameserver
from o365dkim.errors import DnsError, ZoneNotFoundError

log = logging.getLogger(__name__)


class NameserverDiscoveryError(DnsError):
    """Raised when the resolver cannot return a zone's name servers or their addresses."""


@dataclass(frozen=True)
class ZoneSoa:
    """A zone apex and its negative TTL in seconds (the smaller of SOA TTL and MINIMUM)."""

    zone: str
    negative_ttl: int


def negative_ttl(soa: dns.rrset.RRset) -> int:
    """Return how long resolvers cache a negative answer from this zone (RFC 2308 section 5)."""
    return int(min(soa.ttl, *(rdata.minimum for rdata in soa)))


def soa_in_response(response: dns.message.Message, name: str) -> ZoneSoa | None:
    """Return the zone that an authoritative response places ``name`` in, read from its SOA.

    The SOA is in the answer when ``name`` is the apex, and in the authority section of
    a negative answer otherwise. Responses without the AA flag carry no such fact.
    """
    if not response.flags & dns.flags.AA:
        return None
    owner = dns.name.from_text(name)
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.SOA and owner.is_subdomain(rrset.name):
                return ZoneSoa(canonical_name(rrset.name.to_text()), negative_ttl(rrset))
    return None


def discover_zone(domain: str, resolver: dns.resolver.Resolver) -> str:
    """Find the apex of the zone holding ``domain`` by asking the resolver for SOA records.

    The resolver is asked about ``domain`` and its parents only, never about names
    below it, so no negative answer for a record still to be published gets cached.

    NOTE: when ``domain`` itself has no records, the resolver caches NXDOMAIN for it,
    and resolvers that apply RFC 8020 then treat the selector names below it as absent
    until the negative TTL expires.
    """
    try:
        apex = dns.resolver.zone_for_name(domain, resolver=resolver, lifetime=resolver.lifetime)
    except dns.resolver.NoRootSOA as err:
        raise ZoneNotFoundError(
            f"No zone containing {domain} was found: the resolver returned no SOA record.",
            hint="Check that the domain is registered and delegated.",
        ) from err
    except dns.exception.DNSException as err:
        raise NameserverDiscoveryError(
            f"Looking up the zone of {domain} failed: {err}",
            hint="Check that the resolver answers, or give one with --resolver HOST[:PORT].",
        ) from err

    zone = canonical_name(apex.to_text())
    if "." not in zone:
        # The domain does not exist, so the SOA came from its top-level domain.
        raise ZoneNotFoundError(
            f"No zone containing {domain} was found: the nearest SOA is the top-level "
            f"domain {zone}.",
            hint="Check that the domain is registered and delegated to name servers.",
        )
    log.debug("zone of %s is %s", domain, zone)
    return zone


def discover_nameservers(zone: str, resolver: dns.resolver.Resolver) -> list[Nameserver]:
    """Return one Nameserver per address of each NS host of ``zone``, IPv4 first."""
    try:
        answer = resolver.resolve(zone, "NS")
    except dns.exception.DNSException as err:
        raise NameserverDiscoveryError(
            f"Looking up the NS records of {zone} failed: {err}",
            hint="Check the zone's delegation, or list its servers with --nameserver.",
        ) from err

    hosts = sorted(canonical_name(rdata.target.to_text()) for rdata in answer)
    found: list[Nameserver] = []
    for host in hosts:
        addresses = resolve_addresses(host, resolver)
        if not addresses:
            log.warning("name server %s of %s has no address; it is left out", host, zone)
        found.extend(Nameserver(host, address) for address in addresses)

    if not found:
        raise NameserverDiscoveryError(
            f"None of the name servers of {zone} ({', '.join(hosts)}) has an address.",
            hint="Check their A and AAAA records, or list the servers with --nameserver.",
        )
    return found


def resolve_addresses(host: str, resolver: dns.resolver.Resolver) -> list[str]:
    """Return the IPv4 then IPv6 addresses of ``host``; an empty list when it has none."""
    addresses: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(host, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as err:
            log.warning("looking up %s %s failed: %s", host, rdtype, err)
            continue
        addresses.extend(rdata.address for rdata in answer)
    return addresses
