"""The rfc2136 provider: DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945).

Works with any primary that accepts dynamic updates: BIND, Knot, PowerDNS, Windows DNS.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import CnameRecord, ExistingRecord, canonical_name
from o365dkim.dns.servers import is_ip_address, parse_server, query_direct
from o365dkim.dns.zone import soa_in_response
from o365dkim.errors import (
    ConfigurationError,
    DnsConflictError,
    DnsProviderError,
    InvalidInputError,
    ZoneNotFoundError,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-md5.sig-alg.reg.int": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha256-128": dns.tsig.HMAC_SHA256_128,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha384-192": dns.tsig.HMAC_SHA384_192,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha512-256": dns.tsig.HMAC_SHA512_256,
}
_OPTIONS = ("server", "key_name", "key_secret", "key_algorithm", "ttl", "timeout")
_MAX_TTL = 2**31 - 1  # RFC 2181 section 8
# DNSSEC records at a name are maintained by the signer, never by this provider.
_SERVER_MAINTAINED = {"RRSIG", "NSEC", "NSEC3"}
# Asked one by one when the server answers ANY with a minimal response (RFC 8482).
_TYPES_AT_A_SELECTOR = ("CNAME", "TXT", "A", "AAAA", "MX", "NS", "SRV", "CAA", "DNAME")
_TSIG_HINT = (
    "Check the TSIG key name, secret and algorithm, and that the zone's allow-update or "
    "update-policy grants this key."
)


class Rfc2136Provider(DnsProvider):
    """Publishes records with DNS UPDATE at the zone's primary server.

    ``server`` is "HOST[:PORT]". ``key_name``, ``key_secret`` (base64) and
    ``key_algorithm`` are the TSIG key; without them updates go unsigned. ``ttl`` is
    the TTL in seconds of written records and overrides ``CnameRecord.ttl``, and
    ``timeout`` is in seconds per request.
    """

    name = "rfc2136"
    relative_names = False

    def __init__(  # noqa: PLR0917 - the positional order is part of the public API
        self,
        server: str,
        key_name: str | None = None,
        key_secret: str | None = None,
        key_algorithm: str = "hmac-sha256",
        ttl: int | str = 3600,
        timeout: float | str = 10,
    ) -> None:
        host, port = parse_server(server)
        self.ttl = _parse_ttl(ttl)
        self.timeout = _parse_timeout(timeout)
        self.key_name = key_name
        self.key_algorithm = key_algorithm
        tsig_key = _make_tsig_key(key_name, key_secret, key_algorithm)
        self._client = _UpdateClient(host, port, tsig_key, self.timeout)

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Rfc2136Provider:
        """Build the provider from string options; "key-name" and "key_name" both work."""
        normalized = {key.replace("-", "_").lower(): value for key, value in options.items()}
        unknown = sorted(set(normalized) - set(_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"Unknown option(s) for the rfc2136 provider: {', '.join(unknown)}.",
                hint=f"Valid options: {', '.join(_OPTIONS)}.",
            )
        if not normalized.get("server"):
            raise ConfigurationError(
                "The rfc2136 provider needs the server option.",
                hint="Set it to the zone's primary server as HOST[:PORT].",
            )
        return cls(**normalized)

    def __repr__(self) -> str:
        return (
            f"Rfc2136Provider(server={self._client.where!r}, key_name={self.key_name!r}, "
            f"key_algorithm={self.key_algorithm!r})"
        )

    def find_zone(self, host: str) -> str:
        """Ask the server for the SOA of ``host``, then of its parents, until one names a zone."""
        labels = canonical_name(host).split(".")
        for start in range(len(labels) - 1):
            candidate = ".".join(labels[start:])
            response = self._client.query(candidate, "SOA")
            rcode = response.rcode()
            if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
                continue  # not served here; a parent may be
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                raise DnsProviderError(
                    f"The server {self._client.where} returned "
                    f"{dns.rcode.to_text(rcode)} for the SOA of {candidate}.",
                    hint="Check the server's logs for the zone.",
                )
            _raise_if_delegated(response, host, self._client.where)
            soa = soa_in_response(response, candidate)
            if soa is not None:
                log.debug("rfc2136: %s is in zone %s", host, soa.zone)
                return soa.zone
        raise ZoneNotFoundError(
            f"The server {self._client.where} serves no zone containing {host}.",
            hint="Check the domain, and that the server is the primary of its zone.",
        )

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record at ``host``, read with one ANY query over TCP."""
        response = self._client.query(host, "ANY", tcp=True)
        records = self._records_in(response, host)
        if _is_minimal_any(response):
            # NOTE: a server that answers ANY with only a subset of its rrsets, which
            # RFC 8482 allows, would hide a conflict here; the prerequisite in
            # write_cname still stops the update when the name is in use.
            records = []
            for rtype in _TYPES_AT_A_SELECTOR:
                records.extend(self._records_in(self._client.query(host, rtype), host))
        return records

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Send one UPDATE that deletes the rrsets of ``remove`` and adds the CNAME."""
        update = dns.update.UpdateMessage(dns.name.from_text(zone))
        owner = dns.name.from_text(record.host)
        if not remove:
            # Prerequisite "name is not in use" (RFC 2136 section 2.4.5): a record
            # created since list_records makes the server reject the whole update.
            update.absent(owner)
        for rtype in sorted({item.rtype.upper() for item in remove}):
            update.delete(owner, rtype)
        update.add(owner, self.ttl, "CNAME", dns.name.from_text(record.target).to_text())
        self._client.send_update(update, zone)

    def _records_in(self, response: dns.message.Message, host: str) -> list[ExistingRecord]:
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return []
        if rcode != dns.rcode.NOERROR or not response.flags & dns.flags.AA:
            raise DnsProviderError(
                f"Reading the records at {host} from {self._client.where} failed: "
                f"{dns.rcode.to_text(rcode)}"
                f"{'' if response.flags & dns.flags.AA else ', answer not authoritative'}.",
                hint="Point the server option at the zone's primary. " + _TSIG_HINT,
            )
        owner = dns.name.from_text(host)
        found: list[ExistingRecord] = []
        for rrset in response.answer:
            rtype = dns.rdatatype.to_text(rrset.rdtype)
            if rrset.name != owner or rtype in _SERVER_MAINTAINED:
                continue
            found.extend(ExistingRecord(host, rtype, rdata.to_text(), rrset.ttl) for rdata in rrset)
        return found


class _UpdateClient:
    """The only code that talks to the server; turns dnspython errors into DnsProviderError."""

    def __init__(self, host: str, port: int, tsig_key: dns.tsig.Key | None, timeout: float) -> None:
        self.host, self.port = host, port
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._tsig_key = tsig_key
        self._timeout = timeout
        self._address: str | None = host if is_ip_address(host) else None

    def __repr__(self) -> str:
        # The TSIG key's own repr contains the secret, so it is never shown.
        return f"_UpdateClient({self.where!r})"

    def query(self, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
        log.debug("rfc2136: query %s %s at %s", name, rdtype, self.where)
        return self._call(
            f"Querying {name} {rdtype}",
            lambda: query_direct(
                name,
                rdtype,
                self._resolve(),
                self.port,
                timeout=self._timeout,
                tsig_key=self._tsig_key,
                tcp=tcp,
            ),
        )

    def send_update(self, update: dns.update.UpdateMessage, zone: str) -> None:
        if self._tsig_key is not None:
            update.use_tsig(self._tsig_key)
        log.debug("rfc2136: update of zone %s at %s", zone, self.where)
        response = self._call(
            f"Updating zone {zone}",
            lambda: dns.query.tcp(update, self._resolve(), port=self.port, timeout=self._timeout),
        )
        _check_update_rcode(response.rcode(), zone, self.where)
        log.info("rfc2136: zone %s updated at %s", zone, self.where)

    def _resolve(self) -> str:
        if self._address is None:
            try:
                infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            except OSError as err:
                raise DnsProviderError(
                    f"The DNS server name {self.host} cannot be resolved: {err}.",
                    hint="Give the server's IP address instead.",
                ) from err
            self._address = str(infos[0][4][0])
        return self._address

    def _call(self, action: str, send: Callable[[], _T]) -> _T:
        try:
            return send()
        except dns.exception.Timeout as err:
            raise DnsProviderError(
                f"{action} at {self.where} timed out after {self._timeout:g} s.",
                hint=f"Check that the server is reachable on port {self.port} (UDP and TCP).",
            ) from err
        except dns.tsig.PeerBadKey as err:
            raise DnsProviderError(
                f"{action} at {self.where} failed: the server does not know the TSIG key "
                f"{_key_name(self._tsig_key)}.",
                hint=_TSIG_HINT,
            ) from err
        except (dns.tsig.PeerBadSignature, dns.tsig.BadSignature) as err:
            raise DnsProviderError(
                f"{action} at {self.where} failed: the TSIG signature of key "
                f"{_key_name(self._tsig_key)} does not verify (wrong secret or algorithm).",
                hint=_TSIG_HINT,
            ) from err
        except (dns.tsig.PeerBadTime, dns.tsig.BadTime) as err:
            raise DnsProviderError(
                f"{action} at {self.where} failed: the server rejected the TSIG time.",
                hint="Check that the clocks of this machine and the server agree.",
            ) from err
        except (OSError, dns.exception.DNSException) as err:
            raise DnsProviderError(
                f"{action} at {self.where} failed: {err}",
                hint=f"Check that a DNS server listens on {self.where}.",
            ) from err


def _check_update_rcode(rcode: dns.rcode.Rcode, zone: str, where: str) -> None:
    if rcode == dns.rcode.NOERROR:
        return
    text = dns.rcode.to_text(rcode)
    if rcode in (dns.rcode.YXDOMAIN, dns.rcode.YXRRSET, dns.rcode.NXRRSET):
        raise DnsConflictError(
            f"The update of zone {zone} was rejected ({text}): the records at the name "
            "changed after they were read.",
            hint="Run the command again to see the records that are there now.",
        )
    if rcode == dns.rcode.REFUSED:
        raise DnsProviderError(
            f"The server {where} refused the update of zone {zone}.", hint=_TSIG_HINT
        )
    if rcode == dns.rcode.NOTAUTH:
        raise DnsProviderError(
            f"The server {where} is not authoritative for updates to zone {zone} ({text}).",
            hint="Point the server option at the zone's primary. " + _TSIG_HINT,
        )
    raise DnsProviderError(
        f"The server {where} rejected the update of zone {zone}: {text}.",
        hint="Check the server's logs for the zone.",
    )


def _raise_if_delegated(response: dns.message.Message, host: str, where: str) -> None:
    """Raise ZoneNotFoundError when ``response`` is a referral to another zone's servers."""
    if response.flags & dns.flags.AA:
        return
    referral = [rrset for rrset in response.authority if rrset.rdtype == dns.rdatatype.NS]
    if referral:
        child = canonical_name(referral[0].name.to_text())
        raise ZoneNotFoundError(
            f"{host} is in the zone {child}, which {where} delegates to other servers.",
            hint=f"Point the server option at the primary of {child}.",
        )


def _is_minimal_any(response: dns.message.Message) -> bool:
    """Return True for an RFC 8482 answer to ANY: one synthesized HINFO "RFC8482"."""
    return any(
        rrset.rdtype == dns.rdatatype.HINFO and any(r.cpu == b"RFC8482" for r in rrset)
        for rrset in response.answer
    )


def _make_tsig_key(
    key_name: str | None, key_secret: str | None, key_algorithm: str
) -> dns.tsig.Key | None:
    """Build the TSIG key, or None when neither name nor secret is given.

    Error messages name the key, never the secret.
    """
    if not key_name and not key_secret:
        return None
    if not key_name or not key_secret:
        missing = "key_secret" if key_name else "key_name"
        raise ConfigurationError(
            f"The rfc2136 provider has a TSIG key only in part: {missing} is missing.",
            hint="Give both key_name and key_secret, or neither for unsigned updates.",
        )

    algorithm = _ALGORITHMS.get(key_algorithm.strip().lower().removesuffix("."))
    if algorithm is None:
        raise InvalidInputError(
            f"Invalid TSIG algorithm {key_algorithm!r}.",
            hint=f"Use one of: {', '.join(sorted(_ALGORITHMS))}.",
        )
    try:
        name = dns.name.from_text(key_name)
        secret = base64.b64decode("".join(key_secret.split()), validate=True)
    except dns.exception.DNSException as err:
        raise InvalidInputError(f"Invalid TSIG key name {key_name!r}: {err}") from err
    except (binascii.Error, ValueError) as err:
        raise InvalidInputError(
            f"The TSIG secret of key {key_name!r} is not valid base64.",
            hint="Copy the secret from the key file as it is, such as the output of tsig-keygen.",
        ) from err
    if not secret:
        raise InvalidInputError(f"The TSIG secret of key {key_name!r} is empty.")
    return dns.tsig.Key(name, secret, algorithm)


def _key_name(key: dns.tsig.Key | None) -> str:
    return "(none)" if key is None else repr(canonical_name(key.name.to_text()))


def _parse_ttl(value: int | str) -> int:
    try:
        ttl = int(str(value).strip())
    except ValueError:
        ttl = -1
    if not 0 <= ttl <= _MAX_TTL:
        raise InvalidInputError(
            f"Invalid TTL {value!r}: give a whole number of seconds from 0 to {_MAX_TTL}."
        )
    return ttl


def _parse_timeout(value: float | str) -> float:
    try:
        timeout = float(str(value).strip())
    except ValueError:
        timeout = math.nan
    if not (timeout > 0 and math.isfinite(timeout)):
        raise InvalidInputError(f"Invalid timeout {value!r}: give a number of seconds above 0.")
    return timeout
