"""The body of ``o365dkim bulk``: read the CSV, run or plan every row, write the results."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from o365dkim.bulk.contexts import ContextBuilder
from o365dkim.bulk.csvinput import BulkInput, read_bulk_csv
from o365dkim.bulk.journal import Journal
from o365dkim.bulk.profiles import load_profiles
from o365dkim.bulk.results import check_results_path, write_results
from o365dkim.bulk.runner import DONE_RESULTS, BulkOptions, BulkRunner, RowOutcome
from o365dkim.cli.commands import check_arguments, settings_from_args
from o365dkim.cli.options import OutputFormat
from o365dkim.cli.output import print_json
from o365dkim.cli.runtime import device_code_printer, input_policy
from o365dkim.errors import InvalidInputError
from o365dkim.workflow import EnableOptions

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SOME_NOT_DONE = 4
PLAN_OK = frozenset({"changes", "nothing_to_do", "duplicate"})


def run_bulk(args: dict[str, Any]) -> int:
    """Run ``bulk`` and return the exit code."""
    file: Path = args["file"]
    delimiter = args.get("delimiter")
    if delimiter is not None and len(delimiter) != 1:
        raise InvalidInputError(f"Invalid --delimiter {delimiter!r}: give one character.")
    profiles = load_profiles(args.get("config"))
    if args.get("profile"):
        profiles = dataclasses.replace(profiles, default_profile=args["profile"])
        profiles.get(None)  # an unknown --profile stops here, before any work
    default_tenant = args.get("tenant") or profiles.default_tenant
    data = read_bulk_csv(file, delimiter=delimiter, default_tenant=default_tenant)

    results_path: Path = args.get("results") or file.with_name(f"{file.stem}.results.csv")
    check_results_path(results_path)
    journal_path: Path = args.get("journal") or results_path.with_name(
        f"{results_path.name}.journal.sqlite"
    )
    settings = settings_from_args(args)
    check_arguments(args, settings)
    options = _options(args)
    output: OutputFormat = args["output"]

    with _sandbox(args, data) as sandbox:
        builder = ContextBuilder(
            settings, profiles, show_code=device_code_printer(input_policy(args)), sandbox=sandbox
        )
        if args.get("plan"):
            outcomes = BulkRunner(
                data.rows, context_for=builder, journal=_NoJournal(), options=options
            ).plan()
            _show_plan(outcomes, output)
            return EXIT_OK if all(o.result in PLAN_OK for o in outcomes) else EXIT_SOME_NOT_DONE
        outcomes = _run(
            data,
            builder=builder,
            journal=Journal(journal_path),
            options=options,
            output=output,
            results_path=results_path,
        )

    _show_summary(outcomes, output, results_path)
    return EXIT_OK if all(o.result in DONE_RESULTS for o in outcomes) else EXIT_SOME_NOT_DONE


def _options(args: dict[str, Any]) -> BulkOptions:
    enable = EnableOptions(
        replace=bool(args.get("replace")),
        timeout=float(args["timeout"]),
        interval=float(args["interval"]),
    )
    return BulkOptions(
        workers=int(args["workers"]),
        tenant_limit=int(args["tenant_limit"]),
        enable=enable,
        no_wait=bool(args.get("no_wait")),
        exclude=tuple(args.get("exclude") or ()),
    )


@contextlib.contextmanager
def _sandbox(args: dict[str, Any], data: BulkInput) -> Iterator[Any]:
    """Yield a sandbox holding a tenant for every tenant the file names, or None."""
    if not args.get("sandbox"):
        yield None
        return
    from o365dkim.sandbox.environment import SandboxEnvironment

    tenants: dict[str, list[str]] = collections.defaultdict(list)
    for row in data.rows:
        if row.tenant and not row.error:
            tenants[row.tenant].extend([] if row.wildcard else [row.domain])
    with SandboxEnvironment(
        tenants=tenants,
        state_path=args.get("sandbox_state"),
        latency=float(args.get("sandbox_latency") or 0.0),
        secondary_lag=float(args.get("sandbox_lag") or 0.0),
        report_path=args.get("sandbox_report"),
    ) as sandbox:
        yield sandbox


def _run(
    data: BulkInput,
    *,
    builder: ContextBuilder,
    journal: Journal,
    options: BulkOptions,
    output: OutputFormat,
    results_path: Path,
) -> list[RowOutcome]:
    console = Console(stderr=True)
    show_progress = output is OutputFormat.text and console.is_terminal
    runner: BulkRunner | None = None
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show_progress,
        ) as progress:
            task = progress.add_task("starting", total=len(data.rows))

            def update(_outcome: RowOutcome, counts: collections.Counter[str], total: int) -> None:
                text = " · ".join(f"{name} {count}" for name, count in sorted(counts.items()))
                progress.update(task, completed=sum(counts.values()), total=total, description=text)

            runner = BulkRunner(
                data.rows, context_for=builder, journal=journal, options=options, on_progress=update
            )
            return runner.run()
    finally:
        journal.close()
        if runner is not None and runner.outcomes:
            outcomes = runner.ordered_outcomes() + runner.unfinished_outcomes()
            write_results(results_path, data.header, outcomes, delimiter=data.delimiter)
        if runner is not None and runner.reused:
            log.warning(
                "%d row(s) were already finished by an earlier run (journal %s); they were "
                "not touched again.",
                runner.reused,
                journal.path,
            )


def _show_summary(outcomes: list[RowOutcome], output: OutputFormat, results_path: Path) -> None:
    counts = collections.Counter(outcome.result for outcome in outcomes)
    if output is OutputFormat.json:
        print_json(
            {
                "summary": dict(sorted(counts.items())),
                "results": str(results_path),
                "rows": [_json_row(o) for o in outcomes],
            }
        )
        return
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title="Bulk results")
    table.add_column("result")
    table.add_column("rows", justify="right")
    for name, count in sorted(counts.items()):
        table.add_row(name, str(count))
    console.print(table)
    for outcome in outcomes:
        if outcome.result not in DONE_RESULTS:
            error = (outcome.report.get("error") or {}).get("message") or "; ".join(
                outcome.report.get("pending") or []
            )
            console.print(
                f"line {outcome.row.line} {outcome.row.domain}: {outcome.result}: {error}"
            )
    console.print(f"Results: {results_path}")


def _show_plan(outcomes: list[RowOutcome], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json({"rows": [_json_row(o) for o in outcomes]})
        return
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title="Bulk plan (nothing was changed)")
    for column in ("line", "tenant", "domain", "plan"):
        table.add_column(column)
    for outcome in outcomes:
        steps = outcome.report.get("steps") or []
        detail = "; ".join(steps) if steps else _problem(outcome)
        table.add_row(str(outcome.row.line), outcome.row.tenant or "", outcome.row.domain, detail)
    console.print(table)


def _json_row(outcome: RowOutcome) -> dict[str, Any]:
    return {
        **outcome.report,
        "line": outcome.row.line,
        "tenant": outcome.row.tenant,
        "input": dict(outcome.row.cells),
    }


def _problem(outcome: RowOutcome) -> str:
    error = outcome.report.get("error") or {}
    return f"{outcome.result}: {error.get('message') or outcome.report.get('note') or ''}"


class _NoJournal(Journal):
    """A journal that records nothing, for --plan."""

    def __init__(self) -> None:
        pass

    def close(self) -> None:
        """Nothing to close."""

    def record_step(self, row_key: str, step: str, phase: str) -> None:
        """Record nothing."""

    def record_result(self, row_key: str, report: dict[str, Any]) -> None:
        """Record nothing."""

    def final_report(self, row_key: str) -> dict[str, Any] | None:
        """Return None: a plan looks at Exchange, not at earlier runs."""
        return None

    def unconfirmed(self, row_key: str, step: str) -> bool:
        """Return False."""
        return False
