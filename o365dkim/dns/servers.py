"""Name server addresses: "HOST[:PORT]" parsing, bootstrap resolvers and direct queries."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.nameserver
import dns.query
import dns.rdatatype
import dns.resolver
import dns.tsig

from o365dkim.errors import ConfigurationError, InvalidInputError

log = logging.getLogger(__name__)

_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>[^:]*))?$")


@dataclass(frozen=True)
class Nameserver:
    """One address of an authoritative name server, named by its NS host name or address."""

    name: str
    address: str
    port: int = 53

    def __str__(self) -> str:
        where = (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else f"{self.address}:{self.port}"
        )
        return where if self.name == self.address else f"{self.name} ({where})"


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """Parse "HOST", "HOST:PORT", "[IPV6]:PORT" or a bare IPv6 address into (host, port).

    Host names are lower-cased without a final dot; IP addresses are returned in
    their standard form. Raises InvalidInputError naming the value on anything else.
    """
    value = text.strip()
    if not value:
        raise InvalidInputError("Invalid server '': give HOST or HOST:PORT, such as 127.0.0.1:53.")

    bracketed = _BRACKETED.match(value)
    if bracketed:
        host = _check_ipv6(bracketed["host"], text)
        port_text = bracketed["port"]
    elif value.count(":") > 1:
        host, port_text = _check_ipv6(value, text), None
    else:
        host, _, port_text = value.partition(":")
        host = _check_host(host, text)
        port_text = port_text if ":" in value else None

    port = default_port if port_text is None else _check_port(port_text, text)
    return host, port


def _check_ipv6(host: str, shown: str) -> str:
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError as err:
        raise InvalidInputError(
            f"Invalid server {shown!r}: {host!r} is not an IPv6 address. "
            "Write IPv6 with a port as [ADDRESS]:PORT."
        ) from err


def _check_host(host: str, shown: str) -> str:
    if is_ip_address(host):
        return str(ipaddress.ip_address(host))
    name = host.lower().removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise InvalidInputError(
            f"Invalid server {shown!r}: {host!r} is neither an IP address nor a host name."
        )
    return name


def _check_port(port_text: str, shown: str) -> int:
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidInputError(
            f"Invalid server {shown!r}: the port {port_text!r} must be a number from 1 to 65535."
        )
    return int(port_text)


def is_ip_address(text: str) -> bool:
    """Return True when ``text`` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def make_resolver(
    servers: Sequence[tuple[str, int]] | None, timeout: float
) -> dns.resolver.Resolver:
    """Build a stub resolver for ``servers`` (IP addresses), or from /etc/resolv.conf when None.

    The lifetime allows one timeout per configured server, so each gets a chance.
    """
    if servers is None:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration as err:
            raise ConfigurationError(
                "No system resolver is configured (/etc/resolv.conf has no nameserver).",
                hint="Give a resolver with --resolver HOST[:PORT].",
            ) from err
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [_stub_server(host, port) for host, port in servers]
    resolver.timeout = timeout
    resolver.lifetime = timeout * max(2, len(resolver.nameservers))
    return resolver


def _stub_server(host: str, port: int) -> dns.nameserver.Nameserver:
    if not is_ip_address(host):
        raise InvalidInputError(
            f"Invalid resolver {host!r}: give its IP address, because a resolver cannot be "
            "looked up by name before there is a resolver."
        )
    return dns.nameserver.Do53Nameserver(host, port)


def query_direct(
    name: str,
    rdtype: str,
    address: str,
    port: int,
    *,
    timeout: float,
    tsig_key: dns.tsig.Key | None = None,
    tcp: bool = False,
) -> dns.message.Message:
    """Ask one server directly with recursion desired off; UDP falls back to TCP on truncation.

    Errors from dnspython and the socket layer pass through to the caller, which decides
    whether a failure ends the operation or is one server's state.
    """
    query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    # RD off: an authoritative server answers from its zones, and a recursive server
    # answers only from its cache, so the query never fills a cache with a negative
    # answer that would outlive the record's publication (RFC 2308).
    query.flags &= ~dns.flags.RD
    if tsig_key is not None:
        query.use_tsig(tsig_key)
    log.debug("query %s %s at %s port %d", name, rdtype, address, port)
    if tcp:
        return dns.query.tcp(query, address, port=port, timeout=timeout)
    response, _ = dns.query.udp_with_fallback(query, address, port=port, timeout=timeout)
    return response
