"""An authoritative DNS server for the sandbox: a primary and a secondary that lags behind it.

Both listeners run on 127.0.0.1, each on its own free port for UDP and TCP. The primary
answers from the current data; the secondary answers from the data as it was
``secondary_lag`` seconds ago, the way a real secondary trails its primary until NOTIFY
and IXFR catch up. Every zone gets a synthesized SOA, NS records ``ns1``/``ns2`` and
A records 127.0.0.1 for those two names. Names outside the zones get REFUSED.
"""

from __future__ import annotations

import bisect
import collections
import logging
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from o365dkim.dns.records import canonical_name
from o365dkim.errors import DnsConflictError, ZoneNotFoundError

log = logging.getLogger(__name__)

VIEWS = ("primary", "secondary")
_SOA_TTL = 3600
_MAX_CNAME_HOPS = 8
_UDP_PLAIN_SIZE = 512  # RFC 1035 section 4.2.1, for queries without EDNS
_TCP_MAX_SIZE = 65535
_TCP_READ_TIMEOUT = 5.0

# (owner name, record type) -> (TTL, values as presentation text)
_RrsetKey = tuple[str, str]
_Rrset = tuple[int, tuple[str, ...]]


@dataclass(frozen=True)
class QueryRecord:
    """One query received: when, by which listener, for what, and whether RD was set."""

    time: float
    server: str
    qname: str
    qtype: str
    recursion_desired: bool
    transport: str = "udp"


@dataclass(frozen=True)
class _Change:
    time: float
    zone: str
    key: _RrsetKey
    rrset: _Rrset | None  # None deletes the rrset
    seq: int = 0


@dataclass
class _ViewCache:
    """The records one listener serves, advanced change by change instead of rebuilt.

    ``owners`` indexes the record types at each owner name; ``names`` counts, for every
    name, the owners at or below it, which answers "does this name exist" at once.
    """

    seq: int
    data: dict[_RrsetKey, _Rrset]
    owners: dict[str, set[str]]
    names: collections.Counter[str]

    @classmethod
    def build(cls, base: Mapping[_RrsetKey, _Rrset], seq: int) -> _ViewCache:
        cache = cls(seq, {}, {}, collections.Counter())
        for key, rrset in base.items():
            cache.apply(key, rrset)
        return cache

    def apply(self, key: _RrsetKey, rrset: _Rrset | None) -> None:
        owner, rtype = key
        types = self.owners.get(owner)
        if rrset is None:
            if self.data.pop(key, None) is not None and types is not None:
                types.discard(rtype)
                if not types:
                    del self.owners[owner]
                    self._count(owner, -1)
            return
        self.data[key] = rrset
        if types is None:
            self.owners[owner] = {rtype}
            self._count(owner, 1)
        else:
            types.add(rtype)

    def _count(self, owner: str, step: int) -> None:
        labels = owner.split(".")
        for start in range(len(labels)):
            self.names[".".join(labels[start:])] += step


class SandboxDnsServer:
    """An in-process authoritative server with a primary and a lagging secondary listener.

    Changes go through ``set_rrset`` and ``delete_rrset``. The primary sees them at once,
    the secondary ``secondary_lag`` seconds later. Negative answers carry the zone's SOA
    with a TTL of ``soa_minimum`` (RFC 2308).
    """

    def __init__(
        self, zones: Sequence[str], *, secondary_lag: float = 3.0, soa_minimum: int = 300
    ) -> None:
        if secondary_lag < 0:
            raise ValueError(f"secondary_lag must be 0 or more seconds, not {secondary_lag}")
        self.secondary_lag = secondary_lag
        self.soa_minimum = soa_minimum
        self.query_log: list[QueryRecord] = []
        self._zones: set[str] = set()
        self._base: dict[_RrsetKey, _Rrset] = {}
        self._changes: list[_Change] = []
        self._next_seq = 1
        # Changes already folded into _base, per zone, so the SOA serial keeps rising.
        self._folded_counts: dict[str, int] = {}
        # Times of the changes still in the log, per zone, for the SOA serial.
        self._zone_times: dict[str, list[float]] = {}
        self._caches: dict[str, _ViewCache] = {}
        self._lock = threading.Lock()
        self._listeners: dict[str, tuple[socketserver.BaseServer, socketserver.BaseServer]] = {}
        self._threads: list[threading.Thread] = []
        for zone in zones:
            self.add_zone(zone)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Open the primary and secondary listeners and serve them from background threads."""
        if self._listeners:
            return
        for view in VIEWS:
            udp, tcp = _bind_pair(self, view)
            self._listeners[view] = (udp, tcp)
            for server in (udp, tcp):
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"sandbox-dns-{view}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        log.info(
            "sandbox DNS: primary on %s:%d, secondary on %s:%d", *self.primary, *self.secondary
        )

    def stop(self) -> None:
        """Close every listener and wait for its thread."""
        servers = [server for pair in self._listeners.values() for server in pair]
        # shutdown() blocks until the serve loop notices, so all four are stopped at once.
        stoppers = [threading.Thread(target=server.shutdown) for server in servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in servers:
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listeners.clear()
        self._threads.clear()
        log.info("sandbox DNS stopped")

    def __enter__(self) -> SandboxDnsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def primary(self) -> tuple[str, int]:
        """The primary listener's (address, port); the server must be started."""
        return self._address("primary")

    @property
    def secondary(self) -> tuple[str, int]:
        """The secondary listener's (address, port); the server must be started."""
        return self._address("secondary")

    def _address(self, view: str) -> tuple[str, int]:
        if view not in self._listeners:
            raise RuntimeError("the sandbox DNS server is not running; call start() first")
        udp = self._listeners[view][0]
        assert isinstance(udp, socketserver.UDPServer)
        host, port = udp.server_address[:2]
        return str(host), int(port)

    # -- data -------------------------------------------------------------------------

    def add_zone(self, zone: str) -> None:
        """Serve ``zone`` on both listeners at once, with its synthesized SOA and NS records."""
        with self._lock:
            self._zones.add(canonical_name(zone))

    @property
    def zones(self) -> list[str]:
        with self._lock:
            return sorted(self._zones)

    def zone_for(self, name: str) -> str | None:
        """Return the served zone that contains ``name`` (longest match), or None."""
        labels = canonical_name(name).split(".")
        with self._lock:
            for start in range(len(labels)):
                candidate = ".".join(labels[start:])
                if candidate in self._zones:
                    return candidate
        return None

    def records(self, name: str) -> list[tuple[str, str, int]]:
        """Return every record at ``name`` as (type, value, TTL), as the primary serves it.

        The synthesized SOA, NS and name server A records are included.
        """
        owner = canonical_name(name)
        found: list[tuple[str, str, int]] = []
        for rtype, (ttl, values) in sorted(self._rrsets_at(owner, "primary").items()):
            found.extend((rtype, value, ttl) for value in values)
        return found

    def set_rrset(self, name: str, rtype: str, values: Sequence[str], ttl: int = 3600) -> None:
        """Replace the rrset of ``rtype`` at ``name`` with ``values`` (presentation format).

        Raises ZoneNotFoundError outside the served zones and DnsConflictError when a
        CNAME would share its name with other data (RFC 1034 section 3.6.2).
        """
        owner, record_type = self._check_owner(name), rtype.upper()
        parsed = tuple(_normalize_value(record_type, value) for value in values)
        with self._lock:
            current = set(self._advance("primary").owners.get(owner, ()))
        others = current - {record_type}
        if (record_type == "CNAME" and others) or (record_type != "CNAME" and "CNAME" in current):
            raise DnsConflictError(
                f"{owner} cannot have a CNAME together with other records ({sorted(current)})."
            )
        self._record_change((owner, record_type), (ttl, parsed) if parsed else None)

    def delete_rrset(self, name: str, rtype: str | None = None) -> None:
        """Delete the rrset of ``rtype`` at ``name``, or all rrsets there when ``rtype`` is None."""
        owner = self._check_owner(name)
        with self._lock:
            types = sorted(self._advance("primary").owners.get(owner, ()))
        for record_type in types:
            if rtype is None or record_type == rtype.upper():
                self._record_change((owner, record_type), None)

    def lookup_cname(self, name: str, *, view: str = "secondary") -> str | None:
        """Return the CNAME target at ``name`` as ``view`` serves it, without network traffic."""
        rrset = self._cache(view).data.get((canonical_name(name), "CNAME"))
        return canonical_name(rrset[1][0]) if rrset else None

    def _check_owner(self, name: str) -> str:
        owner = canonical_name(name)
        if self.zone_for(owner) is None:
            raise ZoneNotFoundError(
                f"The sandbox DNS server has no zone for {owner}.",
                hint=f"Serve one of its parent domains first (zones: {', '.join(self.zones)}).",
            )
        return owner

    def _record_change(self, key: _RrsetKey, rrset: _Rrset | None) -> None:
        zone = self.zone_for(key[0]) or key[0]
        now = time.monotonic()
        with self._lock:
            self._changes.append(_Change(now, zone, key, rrset, self._next_seq))
            self._next_seq += 1
            self._zone_times.setdefault(zone, []).append(now)
            self._fold_changes(now - self.secondary_lag)
        log.debug("sandbox DNS: %s %s -> %s", key[0], key[1], rrset)

    def _fold_changes(self, before: float) -> None:
        # Changes that both views already see move into the base, so the log stays short.
        # The caches take them first, because a folded change leaves the log for good.
        for view in list(self._caches):
            self._advance(view)
        folded = 0
        while folded < len(self._changes) and self._changes[folded].time <= before:
            change = self._changes[folded]
            _apply(self._base, change)
            self._folded_counts[change.zone] = self._folded_counts.get(change.zone, 0) + 1
            self._zone_times[change.zone].pop(0)
            folded += 1
        del self._changes[:folded]

    def _cutoff(self, view: str) -> float:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
        return time.monotonic() - (self.secondary_lag if view == "secondary" else 0.0)

    def _cache(self, view: str) -> _ViewCache:
        """Return ``view``'s cache, brought up to date; read it without changing it."""
        with self._lock:
            return self._advance(view)

    def _advance(self, view: str) -> _ViewCache:
        cutoff = self._cutoff(view)
        cache = self._caches.get(view)
        if cache is None:
            first = self._changes[0].seq if self._changes else self._next_seq
            cache = self._caches[view] = _ViewCache.build(self._base, first - 1)
        start = cache.seq + 1 - (self._changes[0].seq if self._changes else self._next_seq)
        for change in self._changes[max(start, 0) :]:
            if change.time > cutoff:
                break
            cache.apply(change.key, change.rrset)
            cache.seq = change.seq
        return cache

    def _view(self, view: str) -> dict[_RrsetKey, _Rrset]:
        """Return a copy of the explicit rrsets as ``view`` sees them (no synthesized ones)."""
        with self._lock:
            return dict(self._advance(view).data)

    def _serial(self, zone: str, view: str) -> int:
        cutoff = self._cutoff(view)
        with self._lock:
            seen = bisect.bisect_right(self._zone_times.get(zone, []), cutoff)
            return 1 + self._folded_counts.get(zone, 0) + seen

    def _synthesized(self, zone: str, view: str) -> dict[_RrsetKey, _Rrset]:
        serial = self._serial(zone, view)
        soa = f"ns1.{zone}. hostmaster.{zone}. {serial} 3600 600 86400 {self.soa_minimum}"
        # The negative TTL is the smaller of SOA TTL and MINIMUM (RFC 2308 section 5), so
        # a SOA TTL of at least MINIMUM makes it exactly soa_minimum.
        return {
            (zone, "SOA"): (max(_SOA_TTL, self.soa_minimum), (soa,)),
            (zone, "NS"): (_SOA_TTL, (f"ns1.{zone}.", f"ns2.{zone}.")),
            (f"ns1.{zone}", "A"): (_SOA_TTL, ("127.0.0.1",)),
            (f"ns2.{zone}", "A"): (_SOA_TTL, ("127.0.0.1",)),
        }

    def _rrsets_at(self, owner: str, view: str) -> dict[str, _Rrset]:
        """Return the rrsets at ``owner`` by type, synthesized zone records included."""
        with self._lock:
            cache = self._advance(view)
            found = {rtype: cache.data[(owner, rtype)] for rtype in cache.owners.get(owner, ())}
        zone = self.zone_for(owner)
        if zone is not None:
            for (name, rtype), rrset in self._synthesized(zone, view).items():
                if name == owner:
                    found[rtype] = rrset
        return found

    def _name_exists(self, name: str, view: str) -> bool:
        # A name without records of its own (an empty non-terminal) exists when names below
        # it do, so NXDOMAIN there would deny those names too.
        zone = self.zone_for(name)
        synthesized_names = {zone, f"ns1.{zone}", f"ns2.{zone}"} if zone else set()
        return self._cache(view).names[name] > 0 or name in synthesized_names

    # -- persistence ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the zones, settings and the primary's explicit records as JSON-ready data."""
        rrsets = [
            {"name": name, "type": rtype, "ttl": ttl, "values": list(values)}
            for (name, rtype), (ttl, values) in sorted(self._view("primary").items())
        ]
        return {
            "zones": self.zones,
            "secondary_lag": self.secondary_lag,
            "soa_minimum": self.soa_minimum,
            "rrsets": rrsets,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> SandboxDnsServer:
        """Build a server from ``to_dict`` output; ``kwargs`` override the saved settings.

        Loaded records count as old, so the secondary serves them at once.
        """
        settings: dict[str, Any] = {
            "secondary_lag": float(data.get("secondary_lag", 3.0)),
            "soa_minimum": int(data.get("soa_minimum", 300)),
        }
        settings.update(kwargs)
        server = cls(list(data.get("zones", [])), **settings)
        for item in data.get("rrsets", []):
            owner = server._check_owner(str(item["name"]))
            rtype = str(item["type"]).upper()
            values = tuple(_normalize_value(rtype, str(value)) for value in item["values"])
            server._base[(owner, rtype)] = (int(item["ttl"]), values)
        server._caches.clear()
        return server

    # -- answering --------------------------------------------------------------------

    def handle_wire(self, wire: bytes, view: str, transport: str) -> bytes | None:
        """Answer one DNS message in wire format; return None for data that is not DNS.

        Over UDP a response larger than the client's buffer (512 bytes without EDNS)
        is replaced by an empty one with TC set, so the client retries over TCP.
        """
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException as err:
            log.debug("sandbox DNS %s: dropped a message that does not parse: %s", view, err)
            return None

        max_size = _TCP_MAX_SIZE
        if transport == "udp":
            max_size = query.payload if query.edns >= 0 else _UDP_PLAIN_SIZE
        response = self._respond(query, view, transport)
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.TC | dns.flags.AA
            return truncated.to_wire(max_size=max_size)

    def _respond(
        self, query: dns.message.Message, view: str, transport: str
    ) -> dns.message.Message:
        response = dns.message.make_response(query)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response

        question = query.question[0]
        qname = canonical_name(question.name.to_text())
        qtype = dns.rdatatype.to_text(question.rdtype)
        self._log_query(view, qname, qtype, bool(query.flags & dns.flags.RD), transport)

        zone = self.zone_for(qname)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        self._fill_answer(response, view, qname, qtype, zone)
        return response

    def _fill_answer(
        self,
        response: dns.message.Message,
        view: str,
        qname: str,
        qtype: str,
        zone: str,
    ) -> None:
        name = qname
        for _ in range(_MAX_CNAME_HOPS):
            cname = self._rrsets_at(name, view).get("CNAME")
            if cname is None or qtype in ("CNAME", "ANY"):
                break
            response.answer.append(_to_rrset(name, "CNAME", cname))
            name = canonical_name(cname[1][0])
            next_zone = self.zone_for(name)
            if next_zone is None:
                return  # the target is elsewhere; the client follows it
            zone = next_zone

        matches = [
            _to_rrset(name, rtype, rrset)
            for rtype, rrset in sorted(self._rrsets_at(name, view).items())
            if qtype in (rtype, "ANY")
        ]
        response.answer.extend(matches)
        if matches:
            return

        if not self._name_exists(name, view):
            response.set_rcode(dns.rcode.NXDOMAIN)
        soa = self._synthesized(zone, view)[(zone, "SOA")]
        negative_ttl = min(soa[0], self.soa_minimum)
        response.authority.append(_to_rrset(zone, "SOA", (negative_ttl, soa[1])))

    def _log_query(self, view: str, qname: str, qtype: str, rd: bool, transport: str) -> None:
        record = QueryRecord(time.time(), view, qname, qtype, rd, transport)
        with self._lock:
            self.query_log.append(record)
        log.debug("sandbox DNS %s: %s %s rd=%s over %s", view, qname, qtype, rd, transport)


def _apply(state: dict[_RrsetKey, _Rrset], change: _Change) -> None:
    if change.rrset is None:
        state.pop(change.key, None)
    else:
        state[change.key] = change.rrset


def _normalize_value(rtype: str, value: str) -> str:
    """Return ``value`` in canonical presentation form, with names made absolute."""
    rdtype = dns.rdatatype.from_text(rtype)
    if rdtype == dns.rdatatype.TXT and not value.lstrip().startswith('"'):
        # Unquoted TXT text may contain ";" and spaces, which the zone-file parser would cut.
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
        txt = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, rdtype, chunks)
        return txt.to_text()
    rdata = dns.rdata.from_text(
        dns.rdataclass.IN, rdtype, value, origin=dns.name.root, relativize=False
    )
    return rdata.to_text()


def _to_rrset(owner: str, rtype: str, rrset: _Rrset) -> dns.rrset.RRset:
    ttl, values = rrset
    return dns.rrset.from_text_list(owner + ".", ttl, "IN", rtype, list(values))


class _DnsUdpServer(socketserver.UDPServer):
    def __init__(self, owner: SandboxDnsServer, view: str, port: int) -> None:
        self.owner, self.view = owner, view
        super().__init__(("127.0.0.1", port), _UdpHandler)


class _DnsTcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: SandboxDnsServer, view: str, port: int) -> None:
        self.owner, self.view = owner, view
        super().__init__(("127.0.0.1", port), _TcpHandler)


class _UdpHandler(socketserver.BaseRequestHandler):
    server: _DnsUdpServer

    def handle(self) -> None:
        wire, sock = self.request
        reply = self.server.owner.handle_wire(wire, self.server.view, "udp")
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _DnsTcpServer

    def handle(self) -> None:
        # One connection may carry several length-prefixed messages (RFC 7766).
        self.request.settimeout(_TCP_READ_TIMEOUT)
        while True:
            try:
                header = _read_exact(self.request, 2)
                wire = _read_exact(self.request, struct.unpack("!H", header)[0])
            except (OSError, EOFError):
                return
            reply = self.server.owner.handle_wire(wire, self.server.view, "tcp")
            if reply is None:
                return
            self.request.sendall(struct.pack("!H", len(reply)) + reply)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _bind_pair(owner: SandboxDnsServer, view: str) -> tuple[_DnsUdpServer, _DnsTcpServer]:
    """Bind UDP and TCP listeners on the same free port of 127.0.0.1."""
    last_error: OSError | None = None
    for _ in range(20):
        udp = _DnsUdpServer(owner, view, 0)
        port = int(udp.server_address[1])
        try:
            return udp, _DnsTcpServer(owner, view, port)
        except OSError as err:  # the TCP port is taken; try another UDP port
            udp.server_close()
            last_error = err
    raise OSError(f"no port on 127.0.0.1 is free for both UDP and TCP: {last_error}")
