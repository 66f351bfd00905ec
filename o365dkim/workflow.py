"""The enable workflow: config, CNAMEs, propagation wait, enable, verify.

This is a plain library function; the CLI and the bulk runner call it and decide how
to show its events and result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from o365dkim.dns.propagation import PropagationChecker, PropagationReport
from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import (
    CnameRecord,
    ExistingRecord,
    PublishAction,
    PublishResult,
)
from o365dkim.domains import require_custom_domain, selector_hosts
from o365dkim.errors import DnsError, InvalidInputError, NotConfiguredError, O365DkimError
from o365dkim.exchange.client import ExchangeClient
from o365dkim.exchange.errors import AlreadyExistsError, CnameMissingError, ExchangeError
from o365dkim.exchange.models import DkimConfig
from o365dkim.reports import EnableReport, Event, EventSink, Result, SelectorState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnableOptions:
    """Settings of one enable run."""

    key_size: int = 2048
    replace: bool = False
    #: Seconds to wait for the CNAMEs and for Exchange to accept them (default 15 minutes).
    timeout: float = 900.0
    #: Seconds between two propagation checks, and between two enable attempts.
    interval: float = 15.0
    #: Reads of a new config until both targets appear (replication lag after New).
    config_read_attempts: int = 8
    #: First wait in seconds between those reads; it doubles up to 30 s.
    config_read_wait: float = 2.0


def _ignore(_event: Event) -> None:
    return None


@dataclass
class _Run:
    domain: str
    exchange: ExchangeClient
    provider: DnsProvider
    checker: PropagationChecker
    options: EnableOptions
    notify: EventSink
    deadline: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    report: EnableReport = field(init=False)

    def __post_init__(self) -> None:
        self.report = EnableReport(self.domain, Result.FAILED)

    def emit(self, kind: str, message: str, **data: Any) -> None:
        log.info("%s: %s", self.domain, message)
        self.notify(Event(self.domain, kind, message, data))


def enable_domain(
    domain: str,
    *,
    exchange: ExchangeClient,
    provider: DnsProvider,
    checker: PropagationChecker,
    options: EnableOptions | None = None,
    notify: EventSink = _ignore,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> EnableReport:
    """Take ``domain`` from no DKIM to signing, and return what happened.

    Errors of o365dkim's own types end up in the report (result ``failed``); the caller
    decides the exit code. Running it again on an enabled domain changes nothing.
    """
    options = options or EnableOptions()
    run = _Run(
        domain,
        exchange,
        provider,
        checker,
        options,
        notify,
        clock() + options.timeout,
        sleep,
        clock,
    )
    try:
        _enable(run)
    except InvalidInputError:
        raise
    except O365DkimError as err:
        log.debug("enable %s failed", domain, exc_info=True)
        run.report.result = Result.FAILED
        run.report.error = err
        run.emit("failed", str(err))
    return run.report


def _enable(run: _Run) -> None:
    require_custom_domain(run.domain)
    config = run.exchange.get_dkim_config(run.domain)
    if config is not None and config.enabled and config.has_targets:
        run.emit("config", "DKIM signing is already enabled")
        _finish(run, config, Result.ALREADY_ENABLED)
        return

    config = _ensure_config(run, config)
    records = _records_of(config)
    run.report.selectors = [SelectorState(r.host, r.target, False) for r in records]
    for record in records:
        _publish(run, record)

    report = _wait_for_dns(run, records)
    if not report.ready:
        _mark_pending(run, config, report)
        return
    if not _enable_when_accepted(run):
        return
    final = run.exchange.get_dkim_config(run.domain) or config
    _finish(run, final, Result.ENABLED if final.enabled else Result.FAILED)
    if not final.enabled:
        run.report.error = ExchangeError(
            f"Enabling {run.domain} was accepted, but the config reads back as disabled.",
            hint="Run 'o365dkim status' in a few minutes; replication can lag.",
        )


def _ensure_config(run: _Run, config: DkimConfig | None) -> DkimConfig:
    """Create the config (disabled) if no row exists, then read until both targets appear."""
    if config is None:
        try:
            run.exchange.new_dkim_config(run.domain, key_size=run.options.key_size)
            run.report.changes.append(
                f"created DKIM config ({run.options.key_size}-bit keys, signing off)"
            )
            run.emit("config", f"Created the DKIM config with {run.options.key_size}-bit keys")
        except AlreadyExistsError:
            run.emit("config", "A DKIM config already exists; reading it")
    elif config.has_targets:
        run.emit("config", "Found the DKIM config, signing off")
        return config

    return read_until_targets(run.exchange, run.domain, run.options, run.sleep)


def read_until_targets(
    exchange: ExchangeClient,
    domain: str,
    options: EnableOptions,
    sleep: Callable[[float], None] = time.sleep,
) -> DkimConfig:
    """Read the config until both selector targets appear (replication lag after New)."""
    wait = options.config_read_wait
    for attempt in range(1, options.config_read_attempts + 1):
        current = exchange.get_dkim_config(domain)
        if current is not None and current.has_targets:
            return current
        if attempt < options.config_read_attempts:
            log.info(
                "%s: config has no selector targets yet, reading again in %.0f s", domain, wait
            )
            sleep(wait)
            wait = min(wait * 2, 30.0)
    raise ExchangeError(
        f"The DKIM config of {domain} shows no selector CNAME targets after "
        f"{options.config_read_attempts} reads.",
        hint="Exchange may still be generating the keys; run the same command again later.",
    )


def _records_of(config: DkimConfig) -> list[CnameRecord]:
    # Targets come only from Exchange: their format changed in 2025 and can carry a random suffix.
    host1, host2 = selector_hosts(config.domain)
    assert config.selector1_cname and config.selector2_cname
    return [CnameRecord(host1, config.selector1_cname), CnameRecord(host2, config.selector2_cname)]


def _publish(run: _Run, record: CnameRecord) -> PublishResult:
    result = run.provider.publish(record, replace=run.options.replace)
    if result.action is PublishAction.MANUAL:
        run.emit(
            "manual",
            f"Publish {record.host} CNAME {record.target}",
            host=record.host,
            target=record.target,
            zone_line=record.zone_file_line(),
        )
    elif result.action is PublishAction.UNCHANGED:
        run.emit("dns", f"{record.host} already points to {record.target}")
    else:
        run.report.changes.append(f"{result.action.value} {record.host} CNAME {record.target}")
        run.emit("dns", f"{result.action.value.capitalize()} {record.host} CNAME {record.target}")
    return result


def _wait_for_dns(run: _Run, records: list[CnameRecord]) -> PropagationReport:
    remaining = max(0.0, run.deadline - run.clock())
    run.emit(
        "waiting",
        "Waiting until every authoritative name server returns both CNAMEs",
        timeout=remaining,
    )

    def on_poll(report: PropagationReport) -> None:
        _update_selectors(run, report)
        run.notify(Event(run.domain, "poll", _pending_summary(report), {"ready": report.ready}))

    report = run.checker.wait(
        run.domain,
        records,
        timeout=remaining,
        interval=run.options.interval,
        on_poll=on_poll,
        sleep=run.sleep,
        clock=run.clock,
    )
    _update_selectors(run, report)
    if report.ready:
        run.emit("dns", "Every authoritative name server returns both CNAMEs")
    return report


def _update_selectors(run: _Run, report: PropagationReport) -> None:
    for selector in run.report.selectors:
        selector.published = report.published(selector.host)


def _pending_summary(report: PropagationReport) -> str:
    missing = report.missing()
    if not missing:
        return "all name servers return both CNAMEs"
    return f"{len(missing)} answer(s) still missing"


def _describe_missing(report: PropagationReport) -> list[str]:
    return [answer.describe() for answer in report.missing()]


def _mark_pending(run: _Run, config: DkimConfig, report: PropagationReport) -> None:
    _finish(run, config, Result.PENDING_DNS)
    run.report.pending = _describe_missing(report)
    wait_hint = ""
    if report.negative_ttl:
        wait_hint = f" Resolvers may cache a missing answer for up to {report.negative_ttl} s."
    run.emit(
        "pending",
        "The CNAMEs are not visible at every name server yet. Run the same "
        f"command again to continue.{wait_hint}",
        pending=run.report.pending,
    )


def _enable_when_accepted(run: _Run) -> bool:
    """Turn signing on, retrying while Exchange still reports the CNAMEs missing."""
    while True:
        try:
            run.exchange.set_dkim_enabled(run.domain, True)
        except CnameMissingError as err:
            if run.clock() + run.options.interval > run.deadline:
                run.report.result = Result.PENDING_DNS
                run.report.pending = [f"Exchange Online does not see the CNAMEs yet: {err.message}"]
                run.emit(
                    "pending",
                    "Exchange Online does not see the CNAMEs yet. Run the same "
                    "command again later; its detection can take minutes.",
                )
                return False
            run.emit("retry", "Exchange Online does not see the CNAMEs yet; trying again")
            run.sleep(run.options.interval)
            continue
        run.report.changes.append("enabled DKIM signing")
        run.emit("enabled", "Enabled DKIM signing")
        return True


def _finish(run: _Run, config: DkimConfig, result: Result) -> None:
    report = run.report
    report.result = result
    report.enabled = config.enabled
    report.status = config.status or None
    report.key_size = {
        "selector1": config.selector1_key_size,
        "selector2": config.selector2_key_size,
    }
    if not report.selectors and config.has_targets:
        report.selectors = _observe_selectors(run, _records_of(config))
    if config.enabled:
        _check_active_key(run, config)


def _observe_selectors(run: _Run, records: list[CnameRecord]) -> list[SelectorState]:
    """Return the selectors with what the name servers return now, for a read-only report."""
    try:
        state = run.checker.check(run.domain, records)
    except DnsError as err:
        log.warning("%s: could not check the selector CNAMEs: %s", run.domain, err)
        return [SelectorState(r.host, r.target, False) for r in records]
    return [SelectorState(r.host, r.target, state.published(r.host)) for r in records]


def _check_active_key(run: _Run, config: DkimConfig) -> None:
    """Record whether the active selector's target has a key (field case F4: its own state)."""
    active = config.active_selector
    for selector in run.report.selectors:
        if selector.host.startswith(f"{active}."):
            selector.key_published = run.checker.key_published(selector.target)


def domain_status(
    domain: str, *, exchange: ExchangeClient, checker: PropagationChecker
) -> EnableReport:
    """Return the domain's DKIM state and what the name servers return, changing nothing."""
    report = EnableReport(domain, Result.NOT_CONFIGURED)
    config = exchange.get_dkim_config(domain)
    if config is None:
        return report
    run = _Run(
        domain,
        exchange,
        _NoProvider(),
        checker,
        EnableOptions(),
        _ignore,
        time.monotonic(),
        time.sleep,
        time.monotonic,
    )
    _finish(run, config, Result.ENABLED if config.enabled else Result.DISABLED)
    return run.report


def selector_records(
    domain: str,
    *,
    exchange: ExchangeClient,
    create: bool = False,
    options: EnableOptions | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[CnameRecord], list[str]]:
    """Return the two CNAMEs to publish and the changes made (only with ``create``)."""
    options = options or EnableOptions()
    require_custom_domain(domain)
    config = exchange.get_dkim_config(domain)
    changes: list[str] = []
    if config is None and not create:
        raise NotConfiguredError(
            f"{domain} has no DKIM config in Exchange Online yet.",
            hint="Run 'o365dkim records DOMAIN --create' to create it with signing off.",
        )
    if config is None:
        try:
            exchange.new_dkim_config(domain, key_size=options.key_size)
            changes.append(f"created DKIM config ({options.key_size}-bit keys, signing off)")
        except AlreadyExistsError:
            log.info("%s: a DKIM config already exists", domain)
    if config is None or not config.has_targets:
        config = read_until_targets(exchange, domain, options, sleep)
    return _records_of(config), changes


class _NoProvider(DnsProvider):
    """Placeholder provider for read-only runs; any write is a programming error."""

    name = "none"

    def find_zone(self, host: str) -> str:
        raise NotImplementedError

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        raise NotImplementedError

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        raise NotImplementedError
