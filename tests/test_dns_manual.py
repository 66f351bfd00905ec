"""The manual provider, and the propagation wait that follows it until a person publishes."""

from __future__ import annotations

import pytest

from o365dkim.dns.manual import ManualProvider
from o365dkim.dns.propagation import PropagationChecker, PropagationReport
from o365dkim.dns.provider import create_provider
from o365dkim.dns.records import CnameRecord, PublishAction
from o365dkim.errors import ConfigurationError, DnsProviderError
from o365dkim.sandbox.dns_server import SandboxDnsServer

HOST = "selector1._domainkey.contoso.test"
TARGET = "selector1-contoso-test._domainkey.contoso.n-v1.dkim.mail.microsoft"


def test_manual_publish_reports_manual() -> None:
    result = ManualProvider().publish(CnameRecord(HOST, TARGET))

    assert result.action is PublishAction.MANUAL


def test_manual_publish_ignores_replace() -> None:
    result = ManualProvider().publish(CnameRecord(HOST, TARGET), replace=True)

    assert result.action is PublishAction.MANUAL
    assert result.replaced == ()


def test_manual_zone_is_mail_domain() -> None:
    zone = ManualProvider().find_zone("selector2._domainkey.marketing.contoso.co.uk")

    assert zone == "marketing.contoso.co.uk"


def test_manual_zone_other_name_itself() -> None:
    assert ManualProvider().find_zone("Contoso.com.") == "contoso.com"


def test_manual_lists_no_records() -> None:
    assert ManualProvider().list_records("contoso.test", HOST) == []


def test_manual_write_raises_with_line() -> None:
    record = CnameRecord(HOST, TARGET)

    with pytest.raises(DnsProviderError) as caught:
        ManualProvider().write_cname("contoso.test", record, [])

    assert record.zone_file_line() in str(caught.value)


def test_manual_zone_file_line() -> None:
    line = CnameRecord(HOST, TARGET).zone_file_line()

    assert line == f"{HOST}. 3600 IN CNAME {TARGET}."


def test_manual_from_options_empty() -> None:
    assert isinstance(create_provider("manual", {}), ManualProvider)


def test_manual_from_options_rejects_option() -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_provider("manual", {"server": "127.0.0.1"})

    assert "server" in str(caught.value)


def test_manual_wait_until_person_publishes(sandbox_dns: SandboxDnsServer) -> None:
    """The wait keeps polling until a person (here: the third poll) adds the record."""
    record = CnameRecord(HOST, TARGET)
    ManualProvider().publish(record)
    checker = PropagationChecker(
        nameservers=[sandbox_dns.primary, sandbox_dns.secondary], query_timeout=1.0
    )
    polls: list[PropagationReport] = []

    def person_publishes_on_third_poll(report: PropagationReport) -> None:
        polls.append(report)
        if len(polls) == 3:
            sandbox_dns.set_rrset(HOST, "CNAME", [TARGET + "."])

    report = checker.wait(
        "contoso.test", [record], timeout=10, interval=0.1, on_poll=person_publishes_on_third_poll
    )

    assert report.ready
    assert not polls[2].ready
    assert len(polls) > 3
