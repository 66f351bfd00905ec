"""The bulk scheduler: many domains through the enable steps with bounded concurrency.

Service calls run on a pool of ``workers`` threads, at most ``tenant_limit`` of them for
one tenant at a time, so a throttled tenant holds only its own slots. DNS checks run on
a separate small pool and waiting rows hold no thread at all: a row that waits for
propagation sits in a timer queue until its next check, so the waits of many rows overlap.
"""

from __future__ import annotations

import collections
import fnmatch
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from o365dkim.bulk.csvinput import BulkRow
from o365dkim.bulk.journal import Journal
from o365dkim.dns.propagation import PropagationChecker
from o365dkim.dns.provider import DnsProvider
from o365dkim.errors import O365DkimError
from o365dkim.exchange.client import ExchangeClient
from o365dkim.reports import Event
from o365dkim.workflow import DomainRun, EnableOptions

log = logging.getLogger(__name__)

#: Result values a bulk row can end with, beyond those of ``enable``.
INVALID = "invalid"
DUPLICATE = "duplicate"
#: A ``domain=*`` row whose tenant has no accepted custom domain left to enable.
NO_DOMAINS = "no_domains"
#: Rows the run had not finished when it was interrupted (results file only).
INTERRUPTED = "interrupted"
DONE_RESULTS = frozenset({"enabled", "already_enabled", DUPLICATE, NO_DOMAINS})


@dataclass(frozen=True)
class BulkOptions:
    """Concurrency and behaviour of a bulk run."""

    #: Service calls in flight at once, over all tenants.
    workers: int = 16
    #: Service calls in flight at once for one tenant.
    tenant_limit: int = 3
    #: Threads for DNS propagation checks, which do not load the service.
    dns_workers: int = 8
    enable: EnableOptions = field(default_factory=EnableOptions)
    #: Publish and return: rows whose records are not visible yet end as pending_dns.
    no_wait: bool = False
    #: Glob patterns of domains that ``domain=*`` rows leave out.
    exclude: tuple[str, ...] = ()


@dataclass
class TenantContext:
    """Shared state of one tenant's rows: one signed-in client, DNS provider and checker."""

    tenant: str
    exchange: ExchangeClient
    provider: DnsProvider
    checker: PropagationChecker


ContextFactory = Callable[[BulkRow], TenantContext]


@dataclass
class RowOutcome:
    """The end state of one input row (or one domain expanded from ``domain=*``)."""

    row: BulkRow
    report: dict[str, Any]

    @property
    def result(self) -> str:
        """Return the row's result value."""
        return str(self.report.get("result"))


ProgressCallback = Callable[[RowOutcome, collections.Counter[str], int], None]


@dataclass
class _Item:
    row: BulkRow
    run: DomainRun
    tenant: str
    stage: str = "prepare"


class BulkRunner:
    """Runs rows through DomainRun's steps; call ``run`` once."""

    def __init__(
        self,
        rows: Sequence[BulkRow],
        *,
        context_for: ContextFactory,
        journal: Journal,
        options: BulkOptions | None = None,
        on_progress: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rows = list(rows)
        self.context_for = context_for
        self.journal = journal
        self.options = options or BulkOptions()
        self.on_progress = on_progress
        self.clock = clock
        self.outcomes: list[RowOutcome] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self._timers: list[tuple[float, int, _Item]] = []
        self._sequence = itertools.count()
        self._ready: collections.deque[_Item] = collections.deque()
        self._active: collections.Counter[str] = collections.Counter()
        self._running: dict[Future[str], _Item] = {}
        #: Rows finished by an earlier run of the same journal, reported without any call.
        self.reused = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        """Return the number of rows known so far (``domain=*`` rows grow it)."""
        return len(self.rows)

    def run(self) -> list[RowOutcome]:
        """Process every row and return the outcomes in input order."""
        work = self._expand_and_screen()
        service = ThreadPoolExecutor(self.options.workers, thread_name_prefix="o365dkim-svc")
        checks = ThreadPoolExecutor(self.options.dns_workers, thread_name_prefix="o365dkim-dns")
        try:
            self._ready.extend(work)
            self._loop(service, checks)
        except KeyboardInterrupt:
            self._drain()
            raise
        finally:
            service.shutdown(wait=False, cancel_futures=True)
            checks.shutdown(wait=False, cancel_futures=True)
        return self.ordered_outcomes()

    def plan(self) -> list[RowOutcome]:
        """Return what each row would do, changing nothing and writing no journal."""
        from o365dkim.plan import plan_domain

        self.rows = _drop_repeats(self._expanded())
        candidates = [row for row in self.rows if self._runnable(row)]

        def plan_row(row: BulkRow) -> RowOutcome:
            try:
                context = self.context_for(row)
                report = plan_domain(
                    row.domain,
                    exchange=context.exchange,
                    provider=context.provider,
                    replace=self.options.enable.replace,
                ).to_dict()
                report["result"] = report["outcome"]
            except O365DkimError as err:
                report = _synthetic(row, "failed", err)
            return RowOutcome(row, report)

        with ThreadPoolExecutor(self.options.workers, thread_name_prefix="o365dkim-plan") as pool:
            for outcome in pool.map(plan_row, candidates):
                self._finish(outcome, journal=False)
        return self.ordered_outcomes()

    def _runnable(self, row: BulkRow) -> bool:
        """Return True for a row to run; finish invalid and duplicate rows on the spot."""
        if row.error:
            self._finish_synthetic(row, INVALID, None, message=row.error)
            return False
        if row.duplicate_of is not None:
            self._finish_synthetic(
                row, DUPLICATE, None, message=f"Same tenant and domain as line {row.duplicate_of}."
            )
            return False
        return True

    def unfinished_outcomes(self) -> list[RowOutcome]:
        """Return an ``interrupted`` outcome for every row the run had not finished."""
        done = {id(outcome.row) for outcome in self.outcomes}
        note = "The run stopped before this row finished; run the same command again."
        return [
            RowOutcome(row, _synthetic(row, INTERRUPTED, None, note))
            for row in self.rows
            if id(row) not in done and not row.wildcard
        ]

    def ordered_outcomes(self) -> list[RowOutcome]:
        """Return the outcomes so far in input order."""
        order = {id(row): index for index, row in enumerate(self.rows)}
        return sorted(self.outcomes, key=lambda outcome: order.get(id(outcome.row), 0))

    # -- screening -------------------------------------------------------------------

    def _expanded(self) -> list[BulkRow]:
        expanded: list[BulkRow] = []
        for row in self.rows:
            if row.wildcard and not row.error:
                expanded.extend(self._expand(row))
            else:
                expanded.append(row)
        return expanded

    def _expand_and_screen(self) -> list[_Item]:
        self.rows = _drop_repeats(self._expanded())

        items = []
        for row in self.rows:
            item = self._screen(row)
            if item is not None:
                items.append(item)
        return items

    def _expand(self, row: BulkRow) -> list[BulkRow]:
        """Replace a ``domain=*`` row by one row per accepted custom domain of the tenant."""
        try:
            context = self.context_for(row)
            domains = context.exchange.list_accepted_domains()
        except O365DkimError as err:
            self._finish_synthetic(row, "failed", err)
            return []
        names = [
            item.domain
            for item in domains
            if not item.initial
            and not item.domain.endswith((".onmicrosoft.com", ".onmicrosoft.us"))
            and not any(fnmatch.fnmatch(item.domain, pattern) for pattern in self.options.exclude)
        ]
        log.info("Tenant %s: domain=* covers %d domains", row.tenant, len(names))
        if not names:
            self._finish_synthetic(
                row,
                NO_DOMAINS,
                None,
                message="The tenant has no accepted custom domain (after --exclude).",
            )
        return [
            replace(row, domain=name, cells={**row.cells, "domain": name}, expanded=True)
            for name in sorted(names)
        ]

    def _screen(self, row: BulkRow) -> _Item | None:
        if not self._runnable(row):
            return None
        stored = self.journal.final_report(row.key)
        if stored is not None:
            self.reused += 1
            self._finish(RowOutcome(row, stored), journal=False)
            return None
        return _Item(row, self._domain_run(row), row.tenant or "")

    def _domain_run(self, row: BulkRow) -> DomainRun:
        """Return a DomainRun whose collaborators are bound when its first step runs."""

        def journal_steps(event: Event) -> None:
            if event.kind == "step":
                self.journal.record_step(row.key, event.data["step"], event.data["phase"])

        options = replace(self.options.enable, key_size=row.key_size)
        return _LazyDomainRun(
            row,
            self.context_for,
            options=options,
            notify=journal_steps,
            clock=self.clock,
            creation_unconfirmed=self.journal.unconfirmed(row.key, "create_config"),
        )

    # -- the scheduling loop ---------------------------------------------------------

    def _loop(self, service: ThreadPoolExecutor, checks: ThreadPoolExecutor) -> None:
        running = self._running
        while self._ready or self._timers or running:
            self._release_due_timers(checks, running)
            self._dispatch(service, running)
            timeout = max(0.0, self._timers[0][0] - self.clock()) if self._timers else None
            if not running:
                if timeout:
                    time.sleep(min(timeout, 1.0))
                continue
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                item = running.pop(future)
                if item.stage != "dns":
                    self._active[item.tenant] -= 1
                self._handle(item, future)

    def _drain(self) -> None:
        """Let the steps already in flight finish, so the journal records their outcome.

        A second Ctrl-C stops at once; the journal still makes the rerun safe, because a
        creation that was started but not confirmed is read before anything is created.
        """
        if not self._running:
            return
        log.warning(
            "Interrupted: waiting for %d step(s) in flight to finish (Ctrl-C again to stop now)",
            len(self._running),
        )
        wait(self._running)

    def _release_due_timers(
        self, checks: ThreadPoolExecutor, running: dict[Future[str], _Item]
    ) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, item = heapq.heappop(self._timers)
            if item.stage == "dns":
                running[checks.submit(self._check_dns, item)] = item
            else:
                self._ready.append(item)

    def _dispatch(self, service: ThreadPoolExecutor, running: dict[Future[str], _Item]) -> None:
        in_service = sum(1 for item in running.values() if item.stage != "dns")
        blocked: list[_Item] = []
        while self._ready and in_service < self.options.workers:
            item = self._ready.popleft()
            if self._active[item.tenant] >= self.options.tenant_limit:
                blocked.append(item)
                continue
            self._active[item.tenant] += 1
            in_service += 1
            running[service.submit(self._service_step, item)] = item
        self._ready.extendleft(reversed(blocked))

    def _schedule(self, item: _Item, stage: str, delay: float) -> None:
        item.stage = stage
        heapq.heappush(self._timers, (self.clock() + delay, next(self._sequence), item))

    # -- steps (worker threads) ------------------------------------------------------

    def _service_step(self, item: _Item) -> str:
        run = item.run
        try:
            if item.stage == "prepare":
                return "check_dns" if run.prepare() else "done"
            if run.try_enable():
                run.verify()
                return "done"
            return "enable_retry"
        except O365DkimError as err:
            run.fail(err)
            return "done"
        except Exception as err:  # a bug must fail its row, not the whole run
            log.exception("%s: unexpected error", item.row.domain)
            run.fail(O365DkimError(f"Unexpected error: {type(err).__name__}: {err}"))
            return "done"

    def _check_dns(self, item: _Item) -> str:
        run = item.run
        try:
            report = run.check_dns()
        except O365DkimError as err:
            run.fail(err)
            return "done"
        if report.ready:
            return "enable"
        if self.options.no_wait or self.clock() >= run.deadline:
            run.mark_pending(report)
            return "done"
        return "check_dns_later"

    # -- outcomes (main thread) ------------------------------------------------------

    def _handle(self, item: _Item, future: Future[str]) -> None:
        interval = item.run.options.interval
        next_step = future.result()
        if next_step == "check_dns":
            self._schedule(item, "dns", 0.0)
        elif next_step == "check_dns_later":
            self._schedule(item, "dns", interval)
        elif next_step == "enable":
            item.stage = "enable"
            self._ready.append(item)
        elif next_step == "enable_retry":
            if self.options.no_wait or self.clock() + interval > item.run.deadline:
                item.run.mark_enable_pending()
                self._finish(RowOutcome(item.row, item.run.report.to_dict()))
            else:
                self._schedule(item, "enable", interval)
        else:
            self._finish(RowOutcome(item.row, item.run.report.to_dict()))

    def _finish_synthetic(
        self, row: BulkRow, result: str, error: O365DkimError | None, *, message: str = ""
    ) -> None:
        self._finish(RowOutcome(row, _synthetic(row, result, error, message)), journal=False)

    def _finish(self, outcome: RowOutcome, *, journal: bool = True) -> None:
        if journal:
            self.journal.record_result(outcome.row.key, outcome.report)
        self.outcomes.append(outcome)
        self.counts[outcome.result] += 1
        if self.on_progress is not None:
            self.on_progress(outcome, self.counts, self.total)


class _LazyDomainRun(DomainRun):
    """A DomainRun that signs in for its tenant only when its first step runs.

    Sign-in and DNS set-up happen in a worker thread, so a slow or failing tenant does not
    hold up the scheduling of the others.
    """

    def __init__(self, row: BulkRow, context_for: ContextFactory, **kwargs: Any) -> None:
        self._row = row
        self._context_for = context_for
        self._bound = False
        super().__init__(row.domain, exchange=None, provider=None, checker=None, **kwargs)  # type: ignore[arg-type]

    def prepare(self) -> bool:
        """Bind the tenant's client, DNS provider and checker, then prepare as usual."""
        if not self._bound:
            context = self._context_for(self._row)
            self.exchange, self.provider, self.checker = (
                context.exchange,
                context.provider,
                context.checker,
            )
            self._bound = True
            # The time budget starts when the row starts, not when the run was planned.
            self.deadline = self.clock() + self.options.timeout
        return super().prepare()


def _synthetic(
    row: BulkRow, result: str, error: O365DkimError | None, message: str = ""
) -> dict[str, Any]:
    """Return a report in enable's JSON shape for a row that never ran."""
    report: dict[str, Any] = {
        "domain": row.domain,
        "result": result,
        "enabled": False,
        "status": None,
        "key_size": {},
        "selectors": [],
        "changes": [],
        "pending": [],
        "error": None,
    }
    if error is not None:
        report["error"] = {"type": type(error).__name__, "message": str(error)}
    elif result == INVALID:
        report["error"] = {"type": "InvalidInputError", "message": message}
    else:
        report["note"] = message
    return report


def _drop_repeats(rows: Sequence[BulkRow]) -> list[BulkRow]:
    """Mark rows that ``domain=*`` expanded to a domain another row already names.

    A row written out in the file wins over an expanded one, so its own columns (a ticket
    number, say) get the result.
    """
    seen: dict[str, int] = {}
    for row in rows:
        if not (row.error or row.duplicate_of is not None or row.expanded):
            seen.setdefault(row.key, row.line)
    for row in rows:
        if row.error or row.duplicate_of is not None or not row.expanded:
            continue
        if row.key in seen:
            row.duplicate_of = seen[row.key]
        else:
            seen[row.key] = row.line
    return list(rows)
