"""The enable workflow: config, CNAMEs, propagation wait, enable, verify.

``enable_domain`` runs the steps for one domain; the bulk runner drives the same
``DomainRun`` steps itself so the DNS waits of many domains overlap. Neither prints:
callers decide how to show events and results.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from o365dkim.exchange.errors import (
    AlreadyExistsError,
    CnameMissingError,
    ExchangeError,
    NotFoundError,
)
from o365dkim.exchange.models import DkimConfig
from o365dkim.reports import EnableReport, Event, EventSink, Result, SelectorState

log = logging.getLogger(__name__)

#: Reads of a config whose creation an interrupted run may have sent.
_UNCONFIRMED_READS = 3


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


class DomainRun:
    """The enable steps of one domain, run one by one (bulk) or all at once (enable_domain).

    Each step that changes something emits a ``step`` event before (``phase="start"``)
    and after (``phase="done"``) the change, so a journal can record both.
    """

    def __init__(
        self,
        domain: str,
        *,
        exchange: ExchangeClient,
        provider: DnsProvider,
        checker: PropagationChecker,
        options: EnableOptions | None = None,
        notify: EventSink = _ignore,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        creation_unconfirmed: bool = False,
    ) -> None:
        self.domain = domain
        self.exchange = exchange
        self.provider = provider
        self.checker = checker
        self.options = options or EnableOptions()
        self.notify = notify
        self.sleep = sleep
        self.clock = clock
        self.deadline = clock() + self.options.timeout
        #: True when an earlier, interrupted run may have sent New-DkimSigningConfig already.
        self.creation_unconfirmed = creation_unconfirmed
        self.report = EnableReport(domain, Result.FAILED)
        self.config: DkimConfig | None = None
        self.records: list[CnameRecord] = []

    def emit(self, kind: str, message: str, **data: Any) -> None:
        """Log a step and pass it to the event sink."""
        log.info("%s: %s", self.domain, message)
        self.notify(Event(self.domain, kind, message, data))

    def step(self, name: str, phase: str) -> None:
        """Announce the start or end of a change, for journals."""
        self.notify(Event(self.domain, "step", f"{name} {phase}", {"step": name, "phase": phase}))

    def fail(self, error: O365DkimError) -> EnableReport:
        """Record ``error`` as the result of the run."""
        log.debug("enable %s failed", self.domain, exc_info=error)
        if self.config is not None:
            _fill_config(self.report, self.config)
        self.report.result = Result.FAILED
        self.report.error = error
        self.emit("failed", str(error))
        return self.report

    def prepare(self) -> bool:
        """Read or create the config and publish both CNAMEs.

        Returns False when nothing is left to do (signing was already on).
        """
        require_custom_domain(self.domain)
        config = self.exchange.get_dkim_config(self.domain)
        if config is not None and config.enabled and config.has_targets:
            self.emit("config", "DKIM signing is already enabled")
            _finish(self, config, Result.ALREADY_ENABLED)
            return False

        self.config = _ensure_config(self, config)
        self.records = _records_of(self.config)
        self.report.selectors = [SelectorState(r.host, r.target, False) for r in self.records]
        for record in self.records:
            _publish(self, record)
        return True

    def check_dns(self) -> PropagationReport:
        """Ask every authoritative server once and update the selectors' state."""
        report = self.checker.check(self.domain, self.records)
        _update_selectors(self, report)
        return report

    def mark_pending(self, report: PropagationReport) -> EnableReport:
        """End the run as ``pending_dns``, naming what is missing where."""
        assert self.config is not None
        _mark_pending(self, self.config, report)
        return self.report

    def try_enable(self) -> bool:
        """Send one Set-DkimSigningConfig -Enabled $true.

        Returns False while Exchange does not see the CNAMEs or the new config yet.
        """
        self.step("enable", "start")
        try:
            self.exchange.set_dkim_enabled(self.domain, True)
        except CnameMissingError as err:
            self.step("enable", "rejected")
            self.report.pending = [f"Exchange Online does not see the CNAMEs yet: {err.message}"]
            return False
        except NotFoundError as err:
            # A config created seconds ago can be invisible to Set until it replicates.
            self.step("enable", "rejected")
            self.report.pending = [f"Exchange Online has not replicated the config yet: {err}"]
            return False
        self.step("enable", "done")
        self.report.pending = []
        self.report.changes.append("enabled DKIM signing")
        self.emit("enabled", "Enabled DKIM signing")
        return True

    def mark_enable_pending(self) -> EnableReport:
        """End the run as ``pending_dns`` because Exchange does not see the CNAMEs yet."""
        assert self.config is not None
        pending = self.report.pending
        _finish(self, self.config, Result.PENDING_DNS)
        self.report.pending = pending
        self.emit(
            "pending",
            "Exchange Online does not see the CNAMEs yet. Run the same command again "
            "later; its detection can take minutes.",
        )
        return self.report

    def verify(self) -> EnableReport:
        """Read the config back after enabling and record the end state."""
        assert self.config is not None
        final = self.exchange.get_dkim_config(self.domain) or self.config
        _finish(self, final, Result.ENABLED if final.enabled else Result.FAILED)
        if not final.enabled:
            self.report.error = ExchangeError(
                f"Enabling {self.domain} was accepted, but the config reads back as disabled.",
                hint="Run 'o365dkim status' in a few minutes; replication can lag.",
            )
        return self.report


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
    run = DomainRun(
        domain,
        exchange=exchange,
        provider=provider,
        checker=checker,
        options=options,
        notify=notify,
        sleep=sleep,
        clock=clock,
    )
    try:
        _enable(run)
    except InvalidInputError:
        raise
    except O365DkimError as err:
        run.fail(err)
    return run.report


def _enable(run: DomainRun) -> None:
    if not run.prepare():
        return
    report = _wait_for_dns(run)
    if not report.ready:
        run.mark_pending(report)
        return
    while not run.try_enable():
        if run.clock() + run.options.interval > run.deadline:
            run.mark_enable_pending()
            return
        run.emit("retry", "Exchange Online does not see the CNAMEs yet; trying again")
        run.sleep(run.options.interval)
    run.verify()


def _ensure_config(run: DomainRun, config: DkimConfig | None) -> DkimConfig:
    """Create the config (disabled) if no row exists, then read until both targets appear."""
    if config is not None and config.has_targets:
        run.emit("config", "Found the DKIM config, signing off")
        return config
    if config is None and run.creation_unconfirmed:
        # An interrupted run may have created it, and replication can hide it for a while.
        config = _read_or_none(run)
        if config is not None:
            return config
    if config is None:
        created = _create_config(run)
        if created is not None and created.has_targets:
            return created
    return read_until_targets(run.exchange, run.domain, run.options, run.sleep)


def _read_or_none(run: DomainRun) -> DkimConfig | None:
    # A short read: long enough for replication lag, short enough not to stall a rerun.
    options = dataclasses.replace(run.options, config_read_attempts=_UNCONFIRMED_READS)
    try:
        return read_until_targets(run.exchange, run.domain, options, run.sleep)
    except ExchangeError:
        return None


def _create_config(run: DomainRun) -> DkimConfig | None:
    key_size = run.options.key_size
    run.step("create_config", "start")
    try:
        created = run.exchange.new_dkim_config(run.domain, key_size=key_size)
    except AlreadyExistsError:
        run.step("create_config", "done")
        run.emit("config", "A DKIM config already exists; reading it")
        return None
    except O365DkimError:
        # The service responded with an error, so a rerun knows nothing was created.
        run.step("create_config", "rejected")
        raise
    run.step("create_config", "done")
    run.report.changes.append(f"created DKIM config ({key_size}-bit keys, signing off)")
    run.emit("config", f"Created the DKIM config with {key_size}-bit keys")
    return created


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
            state = "has no selector targets" if current else "is not visible"
            log.info("%s: the config %s yet, reading again in %.0f s", domain, state, wait)
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


def _publish(run: DomainRun, record: CnameRecord) -> PublishResult:
    run.step(f"publish {record.host}", "start")
    result = run.provider.publish(record, replace=run.options.replace)
    run.step(f"publish {record.host}", "done")
    for warning in result.warnings:
        run.report.warnings.append(warning)
        run.emit("warning", warning)
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


def _wait_for_dns(run: DomainRun) -> PropagationReport:
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
        run.records,
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


def _update_selectors(run: DomainRun, report: PropagationReport) -> None:
    for selector in run.report.selectors:
        selector.published = report.published(selector.host)


def _pending_summary(report: PropagationReport) -> str:
    missing = report.missing()
    if not missing:
        return "all name servers return both CNAMEs"
    return f"{len(missing)} answer(s) still missing"


def _describe_missing(report: PropagationReport) -> list[str]:
    return [answer.describe() for answer in report.missing()]


def _mark_pending(run: DomainRun, config: DkimConfig, report: PropagationReport) -> None:
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


def _finish(run: DomainRun, config: DkimConfig, result: Result) -> None:
    report = run.report
    report.result = result
    _fill_config(report, config)
    if not report.selectors and config.has_targets:
        report.selectors = _observe_selectors(run, _records_of(config))
    if config.enabled:
        _check_active_key(run, config)


def _fill_config(report: EnableReport, config: DkimConfig) -> None:
    report.enabled = config.enabled
    report.status = config.status or None
    report.key_size = {
        "selector1": config.selector1_key_size,
        "selector2": config.selector2_key_size,
    }


def _observe_selectors(run: DomainRun, records: list[CnameRecord]) -> list[SelectorState]:
    """Return the selectors with what the name servers return now, for a read-only report."""
    try:
        state = run.checker.check(run.domain, records)
    except DnsError as err:
        log.warning("%s: could not check the selector CNAMEs: %s", run.domain, err)
        return [SelectorState(r.host, r.target, False) for r in records]
    return [SelectorState(r.host, r.target, state.published(r.host)) for r in records]


def _check_active_key(run: DomainRun, config: DkimConfig) -> None:
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
    run = DomainRun(domain, exchange=exchange, provider=_NoProvider(), checker=checker)
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
