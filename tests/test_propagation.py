"""The propagation check against the sandbox DNS server and against real BIND 9 servers."""

from __future__ import annotations

import re

import pytest
from dnsservers import BindPair, BindServer

from o365dkim.dns.propagation import (
    AnswerState,
    Nameserver,
    NameserverDiscoveryError,
    PropagationChecker,
    PropagationReport,
    SelectorAnswer,
    is_dkim_key,
    parse_server,
)
from o365dkim.dns.records import CnameRecord
from o365dkim.dns.rfc2136 import Rfc2136Provider
from o365dkim.errors import DnsError, InvalidInputError, ZoneNotFoundError
from o365dkim.sandbox.dns_server import SandboxDnsServer

DOMAIN = "contoso.test"
SELECTOR1 = CnameRecord(
    "selector1._domainkey.contoso.test",
    "selector1-contoso-test._domainkey.contoso.n-v1.dkim.mail.microsoft",
)
SELECTOR2 = CnameRecord(
    "selector2._domainkey.contoso.test",
    "selector2-contoso-test._domainkey.contoso.n-v1.dkim.mail.microsoft",
)
KEY = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"


def sandbox_checker(server: SandboxDnsServer, **kwargs: float) -> PropagationChecker:
    return PropagationChecker(
        nameservers=[server.primary, server.secondary],
        resolver=[server.primary],
        query_timeout=kwargs.get("query_timeout", 1.0),
    )


def publish(server: SandboxDnsServer, *records: CnameRecord) -> None:
    for record in records:
        server.set_rrset(record.host, "CNAME", [record.target + "."])


# -- parse_server ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        (" ns1.Contoso.com. ", ("ns1.contoso.com", 53)),
        ("ns1.contoso.com:53", ("ns1.contoso.com", 53)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[0:0::1]", ("::1", 53)),
        ("localhost", ("localhost", 53)),
    ],
)
def test_parse_server_valid(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "host:port",
        "[::1",
        "[ns1]:53",
        "[::1]:x",
        "ns1..contoso.com",
        "ns 1.contoso.com",
        "-ns.contoso.com",
        "http://ns1:53",
        "1:2:3",
    ],
)
def test_parse_server_invalid(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_server(text)


def test_parse_server_default_port() -> None:
    assert parse_server("10.0.0.1", default_port=5300) == ("10.0.0.1", 5300)


def test_parse_server_names_value() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_server("ns1:99999")

    assert "'ns1:99999'" in str(caught.value)


def test_nameserver_str_forms() -> None:
    assert str(Nameserver("127.0.0.1", "127.0.0.1", 5353)) == "127.0.0.1:5353"
    assert str(Nameserver("ns1.contoso.com", "::1")) == "ns1.contoso.com ([::1]:53)"


# -- answer states -----------------------------------------------------------------------


def test_check_match_everywhere() -> None:
    with SandboxDnsServer([DOMAIN], secondary_lag=0) as server:
        publish(server, SELECTOR1, SELECTOR2)

        report = sandbox_checker(server).check(DOMAIN, [SELECTOR1, SELECTOR2])

    assert report.ready
    assert len(report.answers) == 4


def test_check_secondary_missing_nxdomain(sandbox_dns: SandboxDnsServer) -> None:
    publish(sandbox_dns, SELECTOR1)

    report = sandbox_checker(sandbox_dns).check(DOMAIN, [SELECTOR1])

    primary, secondary = report.answers
    assert primary.state is AnswerState.MATCH
    assert secondary.state is AnswerState.MISSING
    assert secondary.detail == "NXDOMAIN"
    assert not report.ready


def test_check_nodata_is_missing(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(SELECTOR1.host, "TXT", ["left-over"])

    report = sandbox_checker(sandbox_dns).check(DOMAIN, [SELECTOR1])

    assert report.answers[0].state is AnswerState.MISSING
    assert "NODATA" in report.answers[0].detail


def test_check_other_target_different(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(SELECTOR1.host, "CNAME", ["selector1-old._domainkey.contoso.test."])

    report = sandbox_checker(sandbox_dns).check(DOMAIN, [SELECTOR1])

    assert report.answers[0].state is AnswerState.DIFFERENT
    assert report.answers[0].found == "selector1-old._domainkey.contoso.test"


def test_check_case_and_dot_match(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(SELECTOR1.host, "CNAME", [SELECTOR1.target.upper() + "."])

    report = sandbox_checker(sandbox_dns).check(DOMAIN, [SELECTOR1])

    assert report.answers[0].state is AnswerState.MATCH


def test_check_refused_is_error(sandbox_dns: SandboxDnsServer) -> None:
    record = CnameRecord("selector1._domainkey.fabrikam.example", SELECTOR1.target)

    report = sandbox_checker(sandbox_dns).check("fabrikam.example", [record])

    assert report.answers[0].state is AnswerState.ERROR
    assert "REFUSED" in report.answers[0].detail


def test_check_timeout_is_error(silent_server: tuple[str, int]) -> None:
    checker = PropagationChecker(nameservers=[silent_server], query_timeout=0.2)

    report = checker.check(DOMAIN, [SELECTOR1])

    assert report.answers[0].state is AnswerState.ERROR
    assert report.answers[0].detail == "timed out after 0.2 s"


def test_check_next_address_after_error(
    sandbox_dns: SandboxDnsServer, silent_server: tuple[str, int]
) -> None:
    # Two addresses of one NS host: the first never answers, so the second decides.
    publish(sandbox_dns, SELECTOR1)
    checker = PropagationChecker(nameservers=[], query_timeout=0.2)
    addresses = [
        Nameserver("ns1.contoso.test", *silent_server),
        Nameserver("ns1.contoso.test", *sandbox_dns.primary),
    ]

    answer = checker._ask_host(addresses, SELECTOR1)

    assert answer.state is AnswerState.MATCH
    assert answer.server.port == sandbox_dns.primary[1]


def test_check_negative_ttl_from_soa() -> None:
    with SandboxDnsServer([DOMAIN], soa_minimum=3600) as server:
        report = sandbox_checker(server).check(DOMAIN, [SELECTOR1])

    assert report.negative_ttl == 3600
    assert report.zone == DOMAIN


def test_check_without_records_not_ready(sandbox_dns: SandboxDnsServer) -> None:
    report = sandbox_checker(sandbox_dns).check(DOMAIN, [])

    assert not report.ready


# -- report ------------------------------------------------------------------------------


def test_report_missing_names_host_server(sandbox_dns: SandboxDnsServer) -> None:
    publish(sandbox_dns, SELECTOR1)

    report = sandbox_checker(sandbox_dns).check(DOMAIN, [SELECTOR1, SELECTOR2])

    pending = {(answer.host, answer.server.port) for answer in report.missing()}
    primary_port, secondary_port = sandbox_dns.primary[1], sandbox_dns.secondary[1]
    assert pending == {
        (SELECTOR1.host, secondary_port),
        (SELECTOR2.host, primary_port),
        (SELECTOR2.host, secondary_port),
    }


def test_report_published_per_host() -> None:
    with SandboxDnsServer([DOMAIN], secondary_lag=0) as server:
        publish(server, SELECTOR1)

        report = sandbox_checker(server).check(DOMAIN, [SELECTOR1, SELECTOR2])

    assert report.published(SELECTOR1.host)
    assert not report.published(SELECTOR2.host)
    assert not report.published("selector3._domainkey.contoso.test")


def test_report_to_dict_fields(sandbox_dns: SandboxDnsServer) -> None:
    report = sandbox_checker(sandbox_dns).check(DOMAIN, [SELECTOR1])

    data = report.to_dict()

    assert data["ready"] is False
    assert data["negative_ttl"] == 300
    assert data["answers"][0]["state"] == "missing"
    assert data["answers"][0]["host"] == SELECTOR1.host


def test_answer_describe_line() -> None:
    answer = SelectorAnswer(
        Nameserver("ns2.contoso.test", "192.0.2.2"),
        SELECTOR1.host,
        SELECTOR1.target,
        None,
        AnswerState.MISSING,
        "NXDOMAIN",
    )

    assert answer.describe() == (
        "selector1._domainkey.contoso.test at ns2.contoso.test (192.0.2.2:53): missing (NXDOMAIN)"
    )


# -- wait --------------------------------------------------------------------------------


def test_wait_secondary_lag_then_ready(sandbox_dns: SandboxDnsServer) -> None:
    publish(sandbox_dns, SELECTOR1, SELECTOR2)
    polls: list[PropagationReport] = []

    report = sandbox_checker(sandbox_dns).wait(
        DOMAIN, [SELECTOR1, SELECTOR2], timeout=5, interval=0.1, on_poll=polls.append
    )

    assert report.ready
    assert not polls[0].ready
    assert polls[-1] is report


def test_wait_timeout_returns_last_report(sandbox_dns: SandboxDnsServer) -> None:
    now = [100.0]
    pauses: list[float] = []
    polls: list[PropagationReport] = []

    def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    report = sandbox_checker(sandbox_dns).wait(
        DOMAIN,
        [SELECTOR1],
        timeout=1.0,
        interval=0.4,
        on_poll=polls.append,
        sleep=fake_sleep,
        clock=lambda: now[0],
    )

    assert not report.ready
    assert pauses == pytest.approx([0.4, 0.4, 0.2])
    assert len(polls) == 4
    assert polls[-1] is report


# -- DKIM keys ---------------------------------------------------------------------------


def test_key_published_found(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(SELECTOR1.target, "TXT", [KEY])

    assert sandbox_checker(sandbox_dns).key_published(SELECTOR1.target) is True


def test_key_published_absent(sandbox_dns: SandboxDnsServer) -> None:
    assert sandbox_checker(sandbox_dns).key_published(SELECTOR1.target) is False


def test_key_published_revoked(sandbox_dns: SandboxDnsServer) -> None:
    sandbox_dns.set_rrset(SELECTOR1.target, "TXT", ["v=DKIM1; k=rsa; p="])

    assert sandbox_checker(sandbox_dns).key_published(SELECTOR1.target) is False


def test_key_published_lookup_fails(sandbox_dns: SandboxDnsServer) -> None:
    # The resolver refuses names outside its zones, so the answer cannot be determined.
    target = "selector1-contoso._domainkey.contoso.onmicrosoft.example"

    assert sandbox_checker(sandbox_dns).key_published(target) is None


def test_key_published_resolver_silent(silent_server: tuple[str, int]) -> None:
    checker = PropagationChecker(nameservers=[], resolver=[silent_server], query_timeout=0.2)

    assert checker.key_published(SELECTOR1.target) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (KEY, True),
        ("k=rsa; p=MIIBIjAN", True),  # v= is optional (RFC 6376 section 3.6.1)
        ("v=DKIM1;p=MIIB IjAN", True),
        ("v=DKIM1; k=rsa; p=", False),
        ("v=DKIM2; p=MIIB", False),
        ("v=spf1 include:spf.protection.outlook.com -all", False),
        ("", False),
    ],
)
def test_is_dkim_key_cases(text: str, expected: bool) -> None:
    assert is_dkim_key(text) is expected


# -- discovery through a resolver --------------------------------------------------------


def test_discovery_lists_ns_hosts(sandbox_dns: SandboxDnsServer) -> None:
    # Only discovery runs: the sandbox's NS hosts point at port 53, where no server of ours listens.
    checker = PropagationChecker(resolver=[sandbox_dns.primary], query_timeout=1.0)

    servers = checker.nameservers_for("sales.contoso.test")

    assert servers == [
        Nameserver("ns1.contoso.test", "127.0.0.1"),
        Nameserver("ns2.contoso.test", "127.0.0.1"),
    ]


def test_discovery_tld_zone_not_found() -> None:
    with SandboxDnsServer(["test"]) as server:
        checker = PropagationChecker(resolver=[server.primary], query_timeout=1.0)

        with pytest.raises(ZoneNotFoundError) as caught:
            checker.nameservers_for("nowhere.test")

    assert "top-level domain test" in str(caught.value)


def test_discovery_resolver_refuses(sandbox_dns: SandboxDnsServer) -> None:
    checker = PropagationChecker(resolver=[sandbox_dns.primary], query_timeout=1.0)

    with pytest.raises(NameserverDiscoveryError) as caught:
        checker.nameservers_for("fabrikam.example")

    assert isinstance(caught.value, DnsError)
    assert caught.value.hint is not None


def test_resolver_needs_ip_address() -> None:
    checker = PropagationChecker(resolver=[("dns.contoso.test", 53)])

    with pytest.raises(InvalidInputError):
        checker.key_published(SELECTOR1.target)


def test_nameservers_override_discovery(sandbox_dns: SandboxDnsServer) -> None:
    checker = PropagationChecker(nameservers=[("127.0.0.1", 5353)])

    assert checker.nameservers_for(DOMAIN) == [Nameserver("127.0.0.1", "127.0.0.1", 5353)]


def test_nameservers_by_host_name(sandbox_dns: SandboxDnsServer) -> None:
    port = sandbox_dns.secondary[1]
    checker = PropagationChecker(
        nameservers=[("ns2.contoso.test", port)], resolver=[sandbox_dns.primary]
    )

    assert checker.nameservers_for(DOMAIN) == [Nameserver("ns2.contoso.test", "127.0.0.1", port)]


# -- F9: negative caching ----------------------------------------------------------------


def test_f9_selectors_never_via_resolver(sandbox_dns: SandboxDnsServer) -> None:
    """Selector names go only to the authoritative servers with RD off, never to the resolver."""
    selector_hosts = {SELECTOR1.host, SELECTOR2.host}
    with SandboxDnsServer([DOMAIN, "dkim.mail.microsoft"]) as resolver_box:
        checker = PropagationChecker(
            nameservers=[sandbox_dns.primary, sandbox_dns.secondary],
            resolver=[resolver_box.primary],
            query_timeout=1.0,
        )
        checker.check(DOMAIN, [SELECTOR1, SELECTOR2])
        publish(sandbox_dns, SELECTOR1, SELECTOR2)
        checker.wait(DOMAIN, [SELECTOR1, SELECTOR2], timeout=5, interval=0.1)
        checker.key_published(SELECTOR1.target)

    at_resolver = [q for q in resolver_box.query_log if q.qname in selector_hosts]
    at_servers = [q for q in sandbox_dns.query_log if q.qname in selector_hosts]
    assert at_resolver == []
    assert [q.qname for q in resolver_box.query_log] == [SELECTOR1.target]
    assert at_servers
    assert not any(q.recursion_desired for q in at_servers)


# -- real BIND ---------------------------------------------------------------------------

_QUERY_LINE = re.compile(r"query: (?P<name>\S+) IN (?P<type>\S+) (?P<rd>[+-])")


def bind_records(label: str, zone: str = "example.com") -> tuple[str, list[CnameRecord]]:
    domain = f"{label}.{zone}"
    return domain, [
        CnameRecord(f"selector1._domainkey.{domain}", SELECTOR1.target),
        CnameRecord(f"selector2._domainkey.{domain}", SELECTOR2.target),
    ]


def bind_provider(server: BindServer) -> Rfc2136Provider:
    return Rfc2136Provider(
        server.server, server.tsig_key_name, server.tsig_secret, server.tsig_algorithm
    )


def pair_checker(pair: BindPair) -> PropagationChecker:
    # The primary doubles as the bootstrap resolver: it answers SOA, NS and A for its zones.
    return PropagationChecker(
        resolver=[(pair.primary.address, pair.primary.port)], query_timeout=2.0
    )


@pytest.mark.bind
@pytest.mark.root
def test_bind_discovery_finds_both_servers(bind_pair: BindPair) -> None:
    servers = pair_checker(bind_pair).nameservers_for("sales.example.com")

    assert servers == [
        Nameserver("ns1.example.com", bind_pair.primary.address),
        Nameserver("ns2.example.com", bind_pair.secondary.address),
    ]


@pytest.mark.bind
@pytest.mark.root
def test_bind_secondary_lags_then_matches(bind_pair: BindPair, unique_label: str) -> None:
    domain, records = bind_records(unique_label)
    provider = bind_provider(bind_pair.primary)
    for record in records:
        provider.publish(record)
    polls: list[PropagationReport] = []

    report = pair_checker(bind_pair).wait(
        domain, records, timeout=30, interval=0.25, on_poll=polls.append
    )

    first = {(a.server.name, a.host): a.state for a in polls[0].answers}
    assert report.ready
    assert first[("ns1.example.com", records[0].host)] is AnswerState.MATCH
    assert first[("ns1.example.com", records[1].host)] is AnswerState.MATCH
    # The first update's NOTIFY can reach the secondary within milliseconds, but it starts
    # BIND's notify-delay timer (5 s by default), so the second update reaches it later.
    assert first[("ns2.example.com", records[1].host)] is AnswerState.MISSING


@pytest.mark.bind
@pytest.mark.root
def test_bind_pending_names_host_server(bind_pair: BindPair, unique_label: str) -> None:
    domain, records = bind_records(unique_label)
    bind_provider(bind_pair.primary).publish(records[0])

    report = pair_checker(bind_pair).check(domain, records)

    pending = {(a.host, a.server.name) for a in report.missing()}
    assert (records[1].host, "ns1.example.com") in pending
    assert (records[1].host, "ns2.example.com") in pending
    assert (records[0].host, "ns1.example.com") not in pending
    assert not report.published(records[1].host)


@pytest.mark.bind
@pytest.mark.root
def test_bind_negative_ttl_from_zone(bind_pair: BindPair, unique_label: str) -> None:
    domain, records = bind_records(unique_label, zone="example.org")

    report = pair_checker(bind_pair).check(domain, records)

    assert report.zone == "example.org"
    assert report.negative_ttl == 3600


@pytest.mark.bind
@pytest.mark.root
def test_bind_f9_no_recursive_selector_query(bind_pair: BindPair, unique_label: str) -> None:
    domain, records = bind_records(unique_label)
    checker = pair_checker(bind_pair)
    checker.check(domain, records)
    for record in records:
        bind_provider(bind_pair.primary).publish(record)
    checker.check(domain, records)

    logged = [
        match
        for server in (bind_pair.primary, bind_pair.secondary)
        for match in _QUERY_LINE.finditer(server.log_text())
        if unique_label in match["name"]
    ]
    selector_flags = {m["rd"] for m in logged if m["name"].startswith("selector")}
    domain_flags = {m["rd"] for m in logged if m["name"] == domain}
    assert selector_flags == {"-"}
    assert "+" in domain_flags  # the resolver's SOA lookup of the domain shows up as "+"


@pytest.mark.bind
def test_bind_nameserver_override(bind_server: BindServer, unique_label: str) -> None:
    domain, records = bind_records(unique_label)
    for record in records:
        bind_provider(bind_server).publish(record)
    checker = PropagationChecker(
        nameservers=[(bind_server.address, bind_server.port)], query_timeout=2.0
    )

    report = checker.check(domain, records)

    assert report.ready
    assert report.servers == [
        Nameserver(bind_server.address, bind_server.address, bind_server.port)
    ]
    assert report.negative_ttl == 300
