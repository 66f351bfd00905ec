"""The enable workflow end to end against the sandbox tenant and the sandbox DNS server.

Every layer is real: MSAL sign-in and the admin API over HTTPS, the sandbox provider, and
the propagation check querying both sandbox name servers over UDP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from tenant_fixtures import TenantFactory, TenantHandle

from o365dkim.dns.propagation import PropagationChecker
from o365dkim.dns.records import PlanAction, names_equal
from o365dkim.dns.sandbox import SandboxProvider
from o365dkim.errors import DnsConflictError, InvalidInputError, NotConfiguredError
from o365dkim.exchange.errors import DomainNotAcceptedError, ExchangeError
from o365dkim.sandbox.dns_server import SandboxDnsServer
from o365dkim.sandbox.tenant import ConfigState
from o365dkim.plan import PlanOutcome, plan_domain
from o365dkim.reports import Event, Result
from o365dkim.workflow import EnableOptions, enable_domain, selector_records

DOMAIN = "contoso.test"
FAST = EnableOptions(timeout=10.0, interval=0.1, config_read_attempts=5, config_read_wait=0.05)


@dataclass
class Stack:
    """A tenant, the DNS server it checks, and the workflow's collaborators."""

    handle: TenantHandle
    dns: SandboxDnsServer
    events: list[Event]

    def run(self, domain: str = DOMAIN, options: EnableOptions = FAST):  # type: ignore[no-untyped-def]
        checker = PropagationChecker(
            nameservers=[self.dns.primary, self.dns.secondary], resolver=[self.dns.primary]
        )
        return enable_domain(
            domain, exchange=self.handle.client(), provider=SandboxProvider(self.dns),
            checker=checker, options=options, notify=self.events.append,
        )

    def calls(self, cmdlet: str) -> list[dict[str, object]]:
        return [c.parameters for c in self.handle.tenant.call_log if c.cmdlet == cmdlet]


@pytest.fixture
def make_stack(
    make_tenant: TenantFactory, sandbox_dns: SandboxDnsServer
) -> Callable[..., Stack]:
    def build(
        domains: tuple[str, ...] = (DOMAIN, f"marketing.{DOMAIN}"),
        lookup: Callable[[str], str | None] | None = None,
        **tenant_options: object,
    ) -> Stack:
        def secondary_view(host: str) -> str | None:
            return sandbox_dns.lookup_cname(host, view="secondary")

        def publish(target: str, value: str) -> None:
            sandbox_dns.set_rrset(target, "TXT", [value])

        if sandbox_dns.zone_for("onmicrosoft.com") is None:
            sandbox_dns.add_zone("onmicrosoft.com")
        handle = make_tenant(list(domains), cname_lookup=lookup or secondary_view,
                             publish_key=publish, **tenant_options)
        return Stack(handle, sandbox_dns, [])

    return build


def test_enable_new_domain(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    report = stack.run()
    assert report.result is Result.ENABLED
    assert report.enabled is True
    assert report.status == "Valid"
    assert report.key_size == {"selector1": 2048, "selector2": 2048}
    assert [s.published for s in report.selectors] == [True, True]
    assert report.error is None


def test_enable_creates_disabled_first(make_stack: Callable[..., Stack]) -> None:
    """F1: New runs with signing off; Set runs only after both CNAMEs are visible."""
    stack = make_stack()
    stack.run()
    assert stack.calls("New-DkimSigningConfig") == [
        {"DomainName": DOMAIN, "Enabled": False, "KeySize": 2048}
    ]
    sets = stack.calls("Set-DkimSigningConfig")
    assert sets == [{"Identity": DOMAIN, "Enabled": True}]


def test_enable_retries_cname_missing(make_stack: Callable[..., Stack]) -> None:
    """F1: Exchange's own check lags; CNAME missing during enable is retried, not fatal."""
    holder: dict[str, SandboxDnsServer] = {}
    misses = {"left": 3}

    def slow_detection(host: str) -> str | None:
        if misses["left"] > 0:
            misses["left"] -= 1
            return None
        return holder["dns"].lookup_cname(host, view="secondary")

    stack = make_stack(lookup=slow_detection)
    holder["dns"] = stack.dns
    report = stack.run()
    assert report.result is Result.ENABLED
    assert len(stack.calls("Set-DkimSigningConfig")) >= 2
    assert any(event.kind == "retry" for event in stack.events)


def test_enable_second_run_changes_nothing(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.run()
    calls_before = len(stack.handle.tenant.call_log)
    report = stack.run()
    assert report.result is Result.ALREADY_ENABLED
    assert report.changes == []
    new_calls = [c.cmdlet for c in stack.handle.tenant.call_log[calls_before:]]
    assert new_calls == ["Get-DkimSigningConfig"]


@pytest.mark.parametrize("state", [ConfigState.NONE, ConfigState.KEYLESS, ConfigState.DISABLED])
def test_enable_from_each_config_state(make_stack: Callable[..., Stack], state: ConfigState) -> None:
    """F2: New only when no row exists; a keyless row is read again until targets appear."""
    stack = make_stack()
    stack.handle.tenant.seed_config(DOMAIN, state, keyless_reads=2)
    report = stack.run()
    assert report.result is Result.ENABLED
    expected_new = 1 if state is ConfigState.NONE else 0
    assert len(stack.calls("New-DkimSigningConfig")) == expected_new


def test_enable_keyless_forever_fails_clearly(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.handle.tenant.seed_config(DOMAIN, ConfigState.KEYLESS, keyless_reads=-1)
    report = stack.run()
    assert report.result is Result.FAILED
    assert isinstance(report.error, ExchangeError)
    assert "no selector CNAME targets" in str(report.error)
    assert stack.calls("New-DkimSigningConfig") == []


def test_enable_waits_out_replication_lag(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.handle.tenant.replication_reads = 2
    report = stack.run()
    assert report.result is Result.ENABLED
    assert len(stack.calls("New-DkimSigningConfig")) == 1


def test_enable_publishes_exact_targets(make_stack: Callable[..., Stack]) -> None:
    """F3: the published targets are Exchange's, random suffix and mixed case included."""
    stack = make_stack(random_suffix=True)
    report = stack.run()
    config = stack.handle.tenant.config(DOMAIN)
    assert config is not None
    expected = [config.target_of("selector1"), config.target_of("selector2")]
    assert [s.target for s in report.selectors] == expected
    assert all("Contoso." in target for target in expected)
    for selector in report.selectors:
        stored = stack.dns.lookup_cname(selector.host, view="primary")
        assert stored is not None
        assert names_equal(stored, selector.target)


def test_enable_legacy_target_format(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(legacy_domains=[DOMAIN])
    report = stack.run()
    assert report.result is Result.ENABLED
    assert report.selectors[0].target.endswith("._domainkey.Contoso.onmicrosoft.com")


def test_enable_reports_active_key_only(make_stack: Callable[..., Stack]) -> None:
    """F4: only the active selector needs a key; the other is not an error."""
    stack = make_stack()
    report = stack.run()
    by_selector = {s.host.split(".")[0]: s for s in report.selectors}
    assert by_selector["selector1"].key_published is True
    assert by_selector["selector2"].key_published is None
    assert report.result is Result.ENABLED


def test_enable_key_missing_is_own_state(make_stack: Callable[..., Stack]) -> None:
    """F4: CNAME correct but no key behind the target is reported, not raised."""
    stack = make_stack()
    stack.run()
    config = stack.handle.tenant.config(DOMAIN)
    assert config is not None
    stack.dns.delete_rrset(config.target_of("selector1"), "TXT")
    report = stack.run()
    assert report.result is Result.ALREADY_ENABLED
    assert report.selectors[0].published is True
    assert report.selectors[0].key_published is False


def test_enable_subdomain_in_parent_zone(make_stack: Callable[..., Stack]) -> None:
    """F8: marketing.contoso.test lives in the contoso.test zone."""
    stack = make_stack()
    report = stack.run(f"marketing.{DOMAIN}")
    assert report.result is Result.ENABLED
    assert report.selectors[0].host == f"selector1._domainkey.marketing.{DOMAIN}"
    assert stack.dns.zone_for(report.selectors[0].host) == DOMAIN


def test_enable_conflict_stops_before_enable(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.dns.set_rrset(f"selector1._domainkey.{DOMAIN}", "CNAME", ["other.example.net."])
    report = stack.run()
    assert report.result is Result.FAILED
    assert isinstance(report.error, DnsConflictError)
    assert "other.example.net" in str(report.error)
    assert stack.calls("Set-DkimSigningConfig") == []
    assert stack.dns.lookup_cname(f"selector1._domainkey.{DOMAIN}", view="primary") == (
        "other.example.net"
    )


def test_enable_replace_overwrites_conflict(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.dns.set_rrset(f"selector1._domainkey.{DOMAIN}", "CNAME", ["other.example.net."])
    report = stack.run(options=dataclasses.replace(FAST, replace=True))
    assert report.result is Result.ENABLED
    assert any(change.startswith("replaced selector1") for change in report.changes)


def test_enable_times_out_pending_dns(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.dns.secondary_lag = 3600.0
    report = stack.run(options=dataclasses.replace(FAST, timeout=0.5))
    assert report.result is Result.PENDING_DNS
    assert report.enabled is False
    assert len(report.pending) == 2
    assert all(f":{stack.dns.secondary[1]}: missing" in line for line in report.pending)
    assert stack.calls("Set-DkimSigningConfig") == []


def test_enable_resumes_after_pending(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.dns.secondary_lag = 3600.0
    first = stack.run(options=dataclasses.replace(FAST, timeout=0.3))
    assert first.result is Result.PENDING_DNS
    stack.dns.secondary_lag = 0.0
    second = stack.run()
    assert second.result is Result.ENABLED
    assert len(stack.calls("New-DkimSigningConfig")) == 1
    assert second.changes == ["enabled DKIM signing"]


def test_enable_not_accepted_domain_fails(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(domains=("fabrikam.test",))
    report = stack.run()
    assert report.result is Result.FAILED
    assert isinstance(report.error, DomainNotAcceptedError)


def test_enable_rejects_initial_domain(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    with pytest.raises(InvalidInputError):
        stack.run("contoso.onmicrosoft.com")
    assert stack.handle.tenant.call_log == []


def test_records_read_only_without_create(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    with pytest.raises(NotConfiguredError, match="--create"):
        selector_records(DOMAIN, exchange=stack.handle.client())
    assert stack.calls("New-DkimSigningConfig") == []


def test_records_create_makes_disabled_config(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    records, changes = selector_records(DOMAIN, exchange=stack.handle.client(), create=True,
                                        options=FAST)
    assert [r.host for r in records] == [
        f"selector1._domainkey.{DOMAIN}", f"selector2._domainkey.{DOMAIN}"
    ]
    assert len(changes) == 1
    config = stack.handle.tenant.config(DOMAIN)
    assert config is not None
    assert config.enabled is False


def test_plan_new_domain_changes_nothing(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    plan = plan_domain(DOMAIN, exchange=stack.handle.client(), provider=SandboxProvider(stack.dns))
    assert plan.outcome is PlanOutcome.CHANGES
    assert plan.create_config is True
    assert [item.action for item in plan.dns] == [PlanAction.CREATE, PlanAction.CREATE]
    assert plan.steps()[-1] == "enable DKIM signing"
    assert stack.handle.cmdlets() == ["Get-DkimSigningConfig"]
    assert stack.dns.records(f"selector1._domainkey.{DOMAIN}") == []


def test_plan_reports_conflict(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.dns.set_rrset(f"selector2._domainkey.{DOMAIN}", "TXT", ["v=spf1 -all"])
    plan = plan_domain(DOMAIN, exchange=stack.handle.client(), provider=SandboxProvider(stack.dns))
    assert plan.outcome is PlanOutcome.CONFLICT
    assert plan.dns[1].action is PlanAction.CONFLICT
    assert "--replace" in plan.steps()[-1]
    replaced = plan_domain(DOMAIN, exchange=stack.handle.client(),
                           provider=SandboxProvider(stack.dns), replace=True)
    assert replaced.dns[1].action is PlanAction.REPLACE


def test_plan_enabled_nothing_to_do(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.run()
    plan = plan_domain(DOMAIN, exchange=stack.handle.client(), provider=SandboxProvider(stack.dns))
    assert plan.outcome is PlanOutcome.NOTHING_TO_DO


def test_plan_existing_config_unchanged(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.handle.tenant.seed_config(DOMAIN, ConfigState.DISABLED)
    config = stack.handle.tenant.config(DOMAIN)
    assert config is not None
    stack.dns.set_rrset(f"selector1._domainkey.{DOMAIN}", "CNAME",
                        [config.target_of("selector1") + "."])
    plan = plan_domain(DOMAIN, exchange=stack.handle.client(), provider=SandboxProvider(stack.dns))
    assert plan.create_config is False
    assert [item.action for item in plan.dns] == [PlanAction.UNCHANGED, PlanAction.CREATE]
