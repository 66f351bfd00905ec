"""The sandbox DNS server: authoritative answers, the lagging secondary, the query log."""

from __future__ import annotations

import json
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from o365dkim.errors import DnsConflictError, ZoneNotFoundError
from o365dkim.sandbox.dns_server import SandboxDnsServer

HOST = "selector1._domainkey.contoso.test"
TARGET = "selector1-contoso-test._domainkey.contoso.n-v1.dkim.mail.microsoft"


def ask(
    where: tuple[str, int], name: str, rdtype: str, *, tcp: bool = False, rd: bool = False
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if not rd:
        query.flags &= ~dns.flags.RD
    address, port = where
    if tcp:
        return dns.query.tcp(query, address, port=port, timeout=2)
    return dns.query.udp(query, address, port=port, timeout=2)


def rrset_texts(response: dns.message.Message, rdtype: str) -> list[str]:
    expected = dns.rdatatype.from_text(rdtype)
    return [
        rdata.to_text() for rrset in response.answer if rrset.rdtype == expected for rdata in rrset
    ]


def test_server_cname_query_answered(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])

    response = ask(sandbox_dns.primary, HOST, "CNAME")

    assert rrset_texts(response, "CNAME") == [TARGET + "."]


def test_server_sets_aa_flag(sandbox_dns: SandboxDnsServer) -> None:
    response = ask(sandbox_dns.primary, "contoso.test", "SOA")

    assert response.flags & dns.flags.AA


def test_server_a_query_returns_cname(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", ["www.elsewhere.example."])

    response = ask(sandbox_dns.primary, HOST, "A")

    assert rrset_texts(response, "CNAME") == ["www.elsewhere.example."]
    assert response.rcode() == dns.rcode.NOERROR


def test_server_chases_cname_in_zones(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])
    sandbox_dns.set_rrset(TARGET, "TXT", ["v=DKIM1; k=rsa; p=MIIBIjAN"])

    response = ask(sandbox_dns.primary, HOST, "TXT")

    assert rrset_texts(response, "TXT") == ['"v=DKIM1; k=rsa; p=MIIBIjAN"']


def test_server_nxdomain_has_soa(sandbox_dns: SandboxDnsServer) -> None:
    response = ask(sandbox_dns.primary, HOST, "CNAME")

    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_server_negative_ttl_is_minimum() -> None:
    with SandboxDnsServer(["contoso.test"], soa_minimum=3600) as server:
        response = ask(server.primary, HOST, "CNAME")

    assert response.authority[0].ttl == 3600
    assert response.authority[0][0].minimum == 3600


def test_server_nodata_for_other_type(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "TXT", ["left-over"])

    response = ask(sandbox_dns.primary, HOST, "CNAME")

    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_server_empty_non_terminal_exists(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])

    response = ask(sandbox_dns.primary, "_domainkey.contoso.test", "TXT")

    assert response.rcode() == dns.rcode.NOERROR


def test_server_refuses_outside_zones(sandbox_dns: SandboxDnsServer) -> None:
    response = ask(sandbox_dns.primary, "selector1._domainkey.fabrikam.example", "CNAME")

    assert response.rcode() == dns.rcode.REFUSED
    assert not response.flags & dns.flags.AA


def test_server_apex_ns_records(sandbox_dns: SandboxDnsServer) -> None:
    response = ask(sandbox_dns.primary, "contoso.test", "NS")

    assert sorted(rrset_texts(response, "NS")) == ["ns1.contoso.test.", "ns2.contoso.test."]


def test_server_ns_host_addresses(sandbox_dns: SandboxDnsServer) -> None:
    response = ask(sandbox_dns.secondary, "ns2.contoso.test", "A")

    assert rrset_texts(response, "A") == ["127.0.0.1"]


def test_server_answers_over_tcp(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])

    response = ask(sandbox_dns.primary, HOST, "CNAME", tcp=True)

    assert rrset_texts(response, "CNAME") == [TARGET + "."]


def test_server_truncates_large_udp(sandbox_dns: SandboxDnsServer) -> None:
    values = [f"filler-{index:02d}-" + "x" * 60 for index in range(20)]
    sandbox_dns.set_rrset("big.contoso.test", "TXT", values)
    query = dns.message.make_query("big.contoso.test", "TXT")  # no EDNS: 512 bytes
    address, port = sandbox_dns.primary

    udp = dns.query.udp(query, address, port=port, timeout=2, ignore_trailing=True)
    full, used_tcp = dns.query.udp_with_fallback(query, address, port=port, timeout=2)

    assert udp.flags & dns.flags.TC
    assert used_tcp
    assert len(rrset_texts(full, "TXT")) == 20


def test_server_update_not_implemented(sandbox_dns: SandboxDnsServer) -> None:
    update = dns.update.UpdateMessage("contoso.test")
    update.add(HOST + ".", 300, "CNAME", TARGET + ".")
    address, port = sandbox_dns.primary

    response = dns.query.tcp(update, address, port=port, timeout=2)

    assert response.rcode() == dns.rcode.NOTIMP


def test_server_secondary_lags_primary(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])

    before_primary = rrset_texts(ask(sandbox_dns.primary, HOST, "CNAME"), "CNAME")
    before_secondary = rrset_texts(ask(sandbox_dns.secondary, HOST, "CNAME"), "CNAME")
    time.sleep(sandbox_dns.secondary_lag + 0.1)
    after_secondary = rrset_texts(ask(sandbox_dns.secondary, HOST, "CNAME"), "CNAME")

    assert before_primary == [TARGET + "."]
    assert before_secondary == []
    assert after_secondary == [TARGET + "."]


def test_server_delete_lags_too(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])
    time.sleep(sandbox_dns.secondary_lag + 0.1)

    sandbox_dns.delete_rrset(HOST)

    assert sandbox_dns.lookup_cname(HOST, view="primary") is None
    assert sandbox_dns.lookup_cname(HOST, view="secondary") == TARGET


def test_server_serial_lags_primary(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])

    primary = ask(sandbox_dns.primary, "contoso.test", "SOA").answer[0][0].serial
    secondary = ask(sandbox_dns.secondary, "contoso.test", "SOA").answer[0][0].serial

    assert primary == secondary + 1


def test_server_serial_survives_folding() -> None:
    with SandboxDnsServer(["contoso.test"], secondary_lag=0.0) as server:
        server.set_rrset(HOST, "CNAME", [TARGET])
        server.set_rrset(HOST, "CNAME", [TARGET + ".other."])
        serial = ask(server.primary, "contoso.test", "SOA").answer[0][0].serial

    assert serial == 3


def test_server_logs_queries(sandbox_dns: SandboxDnsServer) -> None:
    ask(sandbox_dns.primary, HOST, "CNAME")
    ask(sandbox_dns.secondary, "contoso.test", "SOA", tcp=True, rd=True)

    first, second = sandbox_dns.query_log

    assert (first.server, first.qname, first.qtype) == ("primary", HOST, "CNAME")
    assert (first.recursion_desired, first.transport) == (False, "udp")
    assert (second.server, second.qname, second.qtype) == ("secondary", "contoso.test", "SOA")
    assert (second.recursion_desired, second.transport) == (True, "tcp")


def test_server_records_include_ttl(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "TXT", ["v=spf1 -all; not really"], ttl=120)

    assert sandbox_dns.records(HOST) == [("TXT", '"v=spf1 -all; not really"', 120)]


def test_server_zone_for_longest_match(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.add_zone("marketing.contoso.test")

    assert sandbox_dns.zone_for("selector1._domainkey.marketing.contoso.test") == (
        "marketing.contoso.test"
    )
    assert sandbox_dns.zone_for("selector1._domainkey.sales.contoso.test") == "contoso.test"
    assert sandbox_dns.zone_for("contoso.example") is None


def test_server_add_zone_served(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.add_zone("onmicrosoft.com")

    response = ask(sandbox_dns.secondary, "contoso.onmicrosoft.com", "TXT")

    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.flags & dns.flags.AA


def test_server_set_outside_zone_raises(sandbox_dns: SandboxDnsServer) -> None:
    with pytest.raises(ZoneNotFoundError):
        sandbox_dns.set_rrset("selector1._domainkey.fabrikam.example", "CNAME", [TARGET])


def test_server_cname_beside_data_raises(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "TXT", ["left-over"])

    with pytest.raises(DnsConflictError):
        sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])


def test_server_lookup_view_checked(sandbox_dns: SandboxDnsServer) -> None:
    with pytest.raises(ValueError, match="view"):
        sandbox_dns.lookup_cname(HOST, view="tertiary")


def test_server_dict_round_trip(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET], ttl=600)
    data = json.loads(json.dumps(sandbox_dns.to_dict()))

    loaded = SandboxDnsServer.from_dict(data)

    assert loaded.zones == sandbox_dns.zones
    assert loaded.records(HOST) == [("CNAME", TARGET + ".", 600)]
    assert loaded.secondary_lag == sandbox_dns.secondary_lag


def test_server_loaded_data_is_old(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(HOST, "CNAME", [TARGET])

    loaded = SandboxDnsServer.from_dict(sandbox_dns.to_dict(), secondary_lag=60.0)

    assert loaded.secondary_lag == 60.0
    assert loaded.lookup_cname(HOST, view="secondary") == TARGET


def test_server_address_needs_start() -> None:
    server = SandboxDnsServer(["contoso.test"])

    with pytest.raises(RuntimeError, match="start"):
        _ = server.primary


def test_server_stop_closes_ports() -> None:
    server = SandboxDnsServer(["contoso.test"])
    server.start()
    address, port = server.primary
    server.stop()

    with pytest.raises(OSError):
        dns.query.tcp(dns.message.make_query(HOST, "CNAME"), address, port=port, timeout=1)


def test_server_records_include_synthesized(sandbox_dns: SandboxDnsServer) -> None:
    types = [rtype for rtype, _, _ in sandbox_dns.records("contoso.test")]

    assert types == ["NS", "NS", "SOA"]
