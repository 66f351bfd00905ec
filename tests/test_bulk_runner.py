"""The bulk scheduler against sandbox tenants over HTTPS and the sandbox DNS server."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from tenant_fixtures import FAST_RETRIES, TenantFactory, TenantHandle

from o365dkim.bulk.csvinput import read_bulk_csv
from o365dkim.bulk.journal import Journal
from o365dkim.bulk.runner import BulkOptions, BulkRunner, RowOutcome, TenantContext
from o365dkim.dns.propagation import PropagationChecker
from o365dkim.dns.sandbox import SandboxProvider
from o365dkim.exchange.client import ExchangeClient
from o365dkim.sandbox.dns_server import SandboxDnsServer
from o365dkim.sandbox.tenant import ConfigState
from o365dkim.workflow import EnableOptions

FAST = BulkOptions(
    workers=8,
    tenant_limit=2,
    enable=EnableOptions(timeout=20.0, interval=0.1, config_read_attempts=4, config_read_wait=0.05),
)


@dataclasses.dataclass
class Fleet:
    """Several sandbox tenants sharing one sandbox DNS server."""

    handles: dict[str, TenantHandle]
    dns: SandboxDnsServer
    clients: dict[str, ExchangeClient] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def context_for(self, row) -> TenantContext:  # type: ignore[no-untyped-def]
        with self.lock:
            if row.tenant not in self.clients:
                self.clients[row.tenant] = self.handles[row.tenant].client()
        checker = PropagationChecker(nameservers=[self.dns.primary, self.dns.secondary],
                                     resolver=[self.dns.primary])
        return TenantContext(row.tenant, self.clients[row.tenant], SandboxProvider(self.dns),
                             checker)

    def news(self, tenant: str, domain: str) -> int:
        return sum(
            1 for call in self.handles[tenant].tenant.call_log
            if call.cmdlet == "New-DkimSigningConfig" and call.parameters.get("DomainName") == domain
            and call.outcome == "ok"
        )


@pytest.fixture
def make_fleet(make_tenant: TenantFactory, sandbox_dns: SandboxDnsServer) -> Callable[..., Fleet]:
    def build(tenants: dict[str, list[str]]) -> Fleet:
        handles = {}
        for name, domains in tenants.items():
            for domain in domains:
                if sandbox_dns.zone_for(domain) is None:
                    sandbox_dns.add_zone(domain)

            def lookup(host: str) -> str | None:
                return sandbox_dns.lookup_cname(host, view="secondary")

            def publish(target: str, value: str) -> None:
                sandbox_dns.set_rrset(target, "TXT", [value])

            handles[name] = make_tenant(domains, name=name, cname_lookup=lookup, publish_key=publish)
        return Fleet(handles, sandbox_dns)

    return build


def csv_rows(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return read_bulk_csv(path).rows


def run(fleet: Fleet, rows, tmp_path: Path, options: BulkOptions = FAST,  # type: ignore[no-untyped-def]
        progress: list[RowOutcome] | None = None) -> dict[int, RowOutcome]:
    journal = Journal(tmp_path / "journal.sqlite")
    runner = BulkRunner(
        rows, context_for=fleet.context_for, journal=journal, options=options,
        on_progress=(lambda outcome, counts, total: progress.append(outcome)) if progress is not None else None,
    )
    outcomes = runner.run()
    journal.close()
    return {outcome.row.line: outcome for outcome in outcomes}


A = "alpha.onmicrosoft.com"
B = "bravo.onmicrosoft.com"


def test_mixed_rows_each_reported(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test", "a2.test", "a3.test"], B: ["b1.test", "b2.test"]})
    fleet.handles[B].tenant.seed_config("b1.test", ConfigState.ENABLED)
    fleet.dns.set_rrset("selector1._domainkey.b2.test", "CNAME", ["someone-else.example.net."])
    rows = csv_rows(tmp_path, (
        f"domain,tenant\na1.test,{A}\na2.test,{A}\nbad domain,{A}\nA1.test.,{A}\n"
        f"b1.test,{B}\nb2.test,{B}\nnotaccepted.test,{A}\n"
    ))
    outcomes = run(fleet, rows, tmp_path)
    assert outcomes[2].result == "enabled"
    assert outcomes[3].result == "enabled"
    assert outcomes[4].result == "invalid"
    assert outcomes[5].result == "duplicate"
    assert outcomes[6].result == "already_enabled"
    assert outcomes[7].result == "failed"
    assert outcomes[7].report["error"]["type"] == "DnsConflictError"
    assert outcomes[8].result == "failed"
    assert outcomes[8].report["error"]["type"] == "DomainNotAcceptedError"
    assert fleet.news(A, "a1.test") == 1


def test_one_token_per_tenant(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: [f"a{i}.test" for i in range(6)], B: [f"b{i}.test" for i in range(6)]})
    rows = csv_rows(tmp_path, "domain,tenant\n" + "".join(
        f"{prefix}{i}.test,{tenant}\n" for prefix, tenant in (("a", A), ("b", B)) for i in range(6)
    ))
    outcomes = run(fleet, rows, tmp_path)
    assert {o.result for o in outcomes.values()} == {"enabled"}
    for handle in fleet.handles.values():
        assert sum(handle.server.token_requests.values()) == 1


def test_calls_per_domain_at_most_four(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: [f"a{i}.test" for i in range(5)]})
    rows = csv_rows(tmp_path, "domain,tenant\n" + "".join(f"a{i}.test,{A}\n" for i in range(5)))
    run(fleet, rows, tmp_path)
    calls = [c for c in fleet.handles[A].tenant.call_log if not (
        c.cmdlet == "Set-DkimSigningConfig" and c.outcome != "ok")]
    assert len(calls) <= 4 * 5


def test_wildcard_expands_accepted_domains(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test", "a2.test", "connector.a1.test"]})
    rows = csv_rows(tmp_path, f"domain,tenant\n*,{A}\na2.test,{A}\n")
    options = dataclasses.replace(FAST, exclude=("connector.*",))
    outcomes = BulkRunner(rows, context_for=fleet.context_for,
                          journal=Journal(tmp_path / "j.sqlite"), options=options).run()
    by_domain = {o.row.domain: o.result for o in outcomes}
    assert by_domain["a1.test"] == "enabled"
    assert "connector.a1.test" not in by_domain
    assert "alpha.onmicrosoft.com" not in by_domain
    assert sorted(o.result for o in outcomes if o.row.domain == "a2.test") == ["duplicate", "enabled"]


def test_throttled_tenant_does_not_stall_others(
    make_fleet: Callable[..., Fleet], tmp_path: Path
) -> None:
    fleet = make_fleet({A: [f"a{i}.test" for i in range(4)], B: [f"b{i}.test" for i in range(6)]})
    slow = fleet.handles[A]
    slow.server.faults_for(slow.tenant.tenant_id).update(throttle_next=1000, throttle_retry_after=1)
    rows = csv_rows(tmp_path, "domain,tenant\n" + "".join(f"a{i}.test,{A}\n" for i in range(4))
                    + "".join(f"b{i}.test,{B}\n" for i in range(6)))
    progress: list[RowOutcome] = []
    options = dataclasses.replace(FAST, workers=4, tenant_limit=2)
    outcomes = run(fleet, rows, tmp_path, options, progress)
    assert [o.result for o in outcomes.values() if o.row.tenant == B] == ["enabled"] * 6
    assert {o.report["error"]["type"] for o in outcomes.values() if o.row.tenant == A} == {
        "ThrottledError"
    }
    finished = [o.row.tenant for o in progress]
    assert finished[:6] == [B] * 6


def test_unavailable_storm_recovers(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test", "a2.test"], B: ["b1.test"]})
    handle = fleet.handles[A]
    handle.server.faults_for(handle.tenant.tenant_id).update(unavailable_next=4, drop_next=1)
    rows = csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\na2.test,{A}\nb1.test,{B}\n")
    outcomes = run(fleet, rows, tmp_path)
    assert {o.result for o in outcomes.values()} == {"enabled"}
    assert fleet.news(A, "a1.test") == 1


def test_no_wait_then_finish(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test", "a2.test"]})
    fleet.dns.secondary_lag = 3600.0
    rows = csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\na2.test,{A}\n")
    first = run(fleet, rows, tmp_path, dataclasses.replace(FAST, no_wait=True))
    assert {o.result for o in first.values()} == {"pending_dns"}

    fleet.dns.secondary_lag = 0.0
    rows = csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\na2.test,{A}\n")
    second = run(fleet, rows, tmp_path)
    assert {o.result for o in second.values()} == {"enabled"}
    assert fleet.news(A, "a1.test") == 1
    assert fleet.news(A, "a2.test") == 1


def test_finished_rows_not_touched_again(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test"]})
    rows = csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\n")
    run(fleet, rows, tmp_path)
    calls = len(fleet.handles[A].tenant.call_log)
    again = run(fleet, csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\n"), tmp_path)
    assert again[2].result == "enabled"
    assert len(fleet.handles[A].tenant.call_log) == calls


def test_journal_records_steps(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test"]})
    run(fleet, csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\n"), tmp_path)
    counts = Journal(tmp_path / "journal.sqlite").step_counts()
    assert counts[("create_config", "start")] == 1
    assert counts[("create_config", "done")] == 1
    assert counts[("enable", "done")] == 1
    assert counts[("publish selector1._domainkey.a1.test", "done")] == 1


def test_unconfirmed_creation_reads_first(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    """A run killed after New was sent but before its answer was journaled never sends New again."""
    fleet = make_fleet({A: ["a1.test"]})
    fleet.handles[A].client().new_dkim_config("a1.test")
    journal = Journal(tmp_path / "journal.sqlite")
    journal.record_step(f"{A}|a1.test", "create_config", "start")
    journal.close()
    outcomes = run(fleet, csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\n"), tmp_path)
    assert outcomes[2].result == "enabled"
    news = [c for c in fleet.handles[A].tenant.call_log if c.cmdlet == "New-DkimSigningConfig"]
    assert len(news) == 1


def test_plan_changes_nothing(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test", "a2.test"]})
    fleet.handles[A].tenant.seed_config("a2.test", ConfigState.ENABLED)
    rows = csv_rows(tmp_path, f"domain,tenant\na1.test,{A}\na2.test,{A}\nbad domain,{A}\n")
    outcomes = BulkRunner(rows, context_for=fleet.context_for,
                          journal=Journal(tmp_path / "j.sqlite"), options=FAST).plan()
    results = [o.result for o in outcomes]
    assert results == ["changes", "nothing_to_do", "invalid"]
    assert {c.cmdlet for c in fleet.handles[A].tenant.call_log} == {"Get-DkimSigningConfig"}


def test_interrupt_lets_steps_finish(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    """Ctrl-C stops scheduling but lets calls in flight finish and reach the journal."""
    fleet = make_fleet({A: [f"a{i}.test" for i in range(8)]})
    rows = csv_rows(tmp_path, "domain,tenant\n" + "".join(f"a{i}.test,{A}\n" for i in range(8)))
    journal = Journal(tmp_path / "journal.sqlite")

    def interrupt(outcome: RowOutcome, counts: object, total: int) -> None:
        raise KeyboardInterrupt

    runner = BulkRunner(rows, context_for=fleet.context_for, journal=journal, options=FAST,
                        on_progress=interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    counts = journal.step_counts()
    journal.close()
    started = counts.get(("create_config", "start"), 0)
    assert started >= 1
    assert counts.get(("create_config", "done"), 0) == started


def test_wildcard_without_domains_reported(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test"]})
    rows = csv_rows(tmp_path, f"domain,tenant\n*,{A}\n")
    options = dataclasses.replace(FAST, exclude=("*.test",))
    outcomes = BulkRunner(rows, context_for=fleet.context_for,
                          journal=Journal(tmp_path / "j.sqlite"), options=options).run()
    assert [o.result for o in outcomes] == ["no_domains"]


def test_explicit_row_wins_over_wildcard(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    fleet = make_fleet({A: ["a1.test", "a2.test"]})
    rows = csv_rows(tmp_path, f"domain,tenant,ticket\n*,{A},T-1\na2.test,{A},T-2\n")
    outcomes = BulkRunner(rows, context_for=fleet.context_for,
                          journal=Journal(tmp_path / "j.sqlite"), options=FAST).run()
    by_ticket = {(o.row.cells["ticket"], o.row.domain): o.result for o in outcomes}
    assert by_ticket[("T-2", "a2.test")] == "enabled"
    assert by_ticket[("T-1", "a2.test")] == "duplicate"
    assert by_ticket[("T-1", "a1.test")] == "enabled"


def test_rejected_creation_not_unconfirmed(
    make_fleet: Callable[..., Fleet], tmp_path: Path
) -> None:
    """A New the service rejected is journaled as such, so a rerun does not wait to read it."""
    fleet = make_fleet({A: ["a1.test"]})
    rows = csv_rows(tmp_path, f"domain,tenant\nnotaccepted.test,{A}\n")
    run(fleet, rows, tmp_path)
    journal = Journal(tmp_path / "journal.sqlite")
    assert not journal.unconfirmed(f"{A}|notaccepted.test", "create_config")
    assert journal.step_counts()[("create_config", "rejected")] == 1
