"""Everything the CLI prints: step logs, spinners, summaries and JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.status import Status

from o365dkim.cli.logs import json_lines, notice
from o365dkim.dns.records import CnameRecord
from o365dkim.plan import PlanOutcome, PlanReport
from o365dkim.reports import EnableReport, Event, Result

_SYMBOLS = {
    "failed": "[red]✗[/red]",
    "pending": "[yellow]…[/yellow]",
    "enabled": "[green]✓[/green]",
}


class TextReporter:
    """Prints each workflow step as a line, with a spinner while waiting for DNS."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    def __call__(self, event: Event) -> None:
        if event.kind == "poll":
            if self._status is not None:
                self._status.update(f"Waiting for DNS: {event.message}")
            return
        self._stop_spinner()
        if event.kind in ("failed", "step"):
            return  # the summary shows the error once; steps are for journals
        if event.kind == "manual":
            self._print_manual(event)
            return
        symbol = _SYMBOLS.get(event.kind, "[cyan]•[/cyan]")
        self.console.print(f"{symbol} {event.domain}: {event.message}", highlight=False)
        if event.kind == "waiting" and self.console.is_terminal:
            self._status = self.console.status("Waiting for DNS")
            self._status.start()

    def close(self) -> None:
        """Stop the spinner if one is running."""
        self._stop_spinner()

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _print_manual(self, event: Event) -> None:
        data = event.data
        self.console.print(
            f"[bold]Publish this record at your DNS provider:[/bold]\n"
            f"  Type:   CNAME\n  Host:   {data['host']}\n  Target: {data['target']}\n"
            f"  Zone-file line: {data['zone_line']}",
            highlight=False,
        )


class JsonReporter:
    """Keeps stdout for the JSON result; only records to publish by hand go to stderr."""

    def __init__(self, err_console: Console) -> None:
        self.err_console = err_console

    def __call__(self, event: Event) -> None:
        if event.kind != "manual":
            return
        line = f"Publish: {event.data['zone_line']}"
        if json_lines():
            # With --log-format json every stderr line is a JSON object.
            notice(line, domain=event.domain, host=event.data["host"], target=event.data["target"])
        else:
            self.err_console.print(line, highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Nothing to stop."""


def print_report_text(console: Console, report: EnableReport) -> None:
    """Print the end state of one domain for a person."""
    key_sizes = ", ".join(f"{name} {size or '?'} bits" for name, size in report.key_size.items())
    headline = {
        Result.ENABLED: "[green]DKIM signing is enabled[/green]",
        Result.ALREADY_ENABLED: "[green]DKIM signing was already enabled; nothing changed[/green]",
        Result.PENDING_DNS: "[yellow]Waiting for DNS: signing is not enabled yet[/yellow]",
        Result.FAILED: "[red]Failed[/red]",
        Result.DISABLED: "DKIM config exists, signing is off",
        Result.NOT_CONFIGURED: "No DKIM config in Exchange Online",
    }[report.result]
    console.print(f"{report.domain}: {headline}", highlight=False)
    if report.status:
        console.print(f"  Status: {report.status}; keys: {key_sizes}", highlight=False)
    for selector in report.selectors:
        mark = "published" if selector.published else "not visible at every name server"
        key = ""
        if selector.key_published is False:
            key = "; CNAME correct, key not published behind the target yet"
        console.print(f"  {selector.host} -> {selector.target} ({mark}{key})", highlight=False)
    for warning in report.warnings:
        console.print(f"  warning: {warning}", highlight=False)
    for line in report.pending:
        console.print(f"  not visible yet: {line}", highlight=False)
    if report.result is Result.PENDING_DNS:
        console.print("  Run the same command again to continue.", highlight=False)
    if report.error is not None:
        console.print(f"  Error: {report.error}", highlight=False)


def print_plan_text(console: Console, report: PlanReport) -> None:
    """Print a plan for a person: the outcome, then the steps enable would take."""
    headline = {
        PlanOutcome.CHANGES: "enable would make these changes",
        PlanOutcome.NOTHING_TO_DO: "nothing to do",
        PlanOutcome.CONFLICT: "[red]conflict: enable would stop[/red]",
    }[report.outcome]
    console.print(f"{report.domain}: {headline}", highlight=False)
    for number, step in enumerate(report.steps(), start=1):
        console.print(f"  {number}. {step}", highlight=False, markup=False)


def print_json(data: dict[str, Any]) -> None:
    """Write one JSON object to stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def records_to_dict(domain: str, records: list[CnameRecord], changes: list[str]) -> dict[str, Any]:
    """Return the output of ``records`` as JSON data."""
    return {
        "domain": domain,
        "selectors": [
            {"host": r.host, "target": r.target, "zone_line": r.zone_file_line()} for r in records
        ],
        "changes": changes,
    }


def print_records_text(console: Console, records: list[CnameRecord], changes: list[str]) -> None:
    """Print the two CNAMEs for a DNS admin, plus zone-file lines."""
    for change in changes:
        console.print(f"• {change}", highlight=False)
    console.print("Publish these two CNAME records (names are absolute):", highlight=False)
    for record in records:
        console.print(f"  {record.host}  CNAME  {record.target}", highlight=False)
    console.print("Zone-file lines:", highlight=False)
    for record in records:
        console.print(f"  {record.zone_file_line()}", highlight=False, soft_wrap=True)


def print_identity_text(console: Console, identity: dict[str, Any]) -> None:
    """Print who is signed in (``login`` and ``whoami``) for a person; never the token."""
    who = "App" if identity["kind"] == "app" else "User"
    cache = identity["token_cache"]
    source = "from the token cache" if identity["from_cache"] else "new"
    console.print(
        f"Signed in to tenant {identity['tenant_id']} ({identity['cloud']} cloud) with "
        f"--auth {identity['auth']}",
        highlight=False,
        markup=False,
    )
    console.print(f"  {who}: {identity['subject']}", highlight=False, markup=False)
    if identity["permissions"]:
        permissions = ", ".join(identity["permissions"])
        console.print(f"  Permissions: {permissions}", highlight=False, markup=False)
    console.print(
        f"  Token valid until {identity['expires_on']} ({source})", highlight=False, markup=False
    )
    console.print(f"  Token cache: {_cache_text(cache)}", highlight=False, markup=False)


def print_logout_text(console: Console, data: dict[str, Any]) -> None:
    """Print what ``logout`` removed from the token cache."""
    removed = data["removed"]
    console.print(
        f"Removed {removed['accounts']} accounts, {removed['access_tokens']} access tokens and "
        f"{removed['refresh_tokens']} refresh tokens from the token cache "
        f"({_cache_text(data['token_cache'])}).",
        highlight=False,
        markup=False,
    )


def _cache_text(cache: dict[str, Any]) -> str:
    if not cache["persistent"]:
        return "memory only, nothing kept after this run"
    kind = "encrypted" if cache["encrypted"] else "unencrypted, readable only by you"
    return f"{cache['location']}, {kind}"
