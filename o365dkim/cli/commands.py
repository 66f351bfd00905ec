"""Command bodies: turn parsed options into settings, call the library, print the result."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from o365dkim.cli.logs import logging_to_stderr
from o365dkim.cli.options import OutputFormat
from o365dkim.cli.output import (
    JsonReporter,
    TextReporter,
    print_json,
    print_records_text,
    print_report_text,
    records_to_dict,
)
from o365dkim.dns.provider import DnsProvider
from o365dkim.domains import normalize_domain, require_custom_domain
from o365dkim.errors import InvalidInputError
from o365dkim.settings import Settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 3
#: In --sandbox runs the secondary lags by seconds, so checks run at least this often.
SANDBOX_MAX_INTERVAL = 1.0


@dataclass
class Environment:
    """Settings plus, in sandbox runs, the sandbox's own DNS provider."""

    settings: Settings
    provider: DnsProvider | None = None


def settings_from_args(args: dict[str, Any]) -> Settings:
    """Build Settings from the command's options (environment already applied by typer)."""
    dns_options: dict[str, str] = {}
    if args.get("dns_provider") == "rfc2136":
        pairs = {
            "server": args.get("rfc2136_server"),
            "key_name": args.get("rfc2136_key_name"),
            "key_secret": args.get("rfc2136_key_secret"),
            "key_algorithm": args.get("rfc2136_key_algorithm"),
        }
        dns_options = {key: value for key, value in pairs.items() if value}
    return Settings(
        tenant=args.get("tenant"),
        client_id=args.get("client_id"),
        auth=args.get("auth"),
        certificate=args.get("certificate"),
        certificate_password=args.get("certificate_password"),
        cloud=args.get("cloud") or "worldwide",
        dns_provider=args.get("dns_provider") or "manual",
        dns_options=dns_options,
        nameservers=_split_servers(args.get("nameserver")),
        resolvers=_split_servers(args.get("resolver")),
        # Overrides for a sandbox tenant outside this process (tests); not shown in --help.
        authority_host=os.environ.get("O365DKIM_AUTHORITY_HOST") or None,
        api_base=os.environ.get("O365DKIM_API_BASE") or None,
        ca_bundle=os.environ.get("O365DKIM_CA_BUNDLE") or None,
    )


def _split_servers(values: Sequence[str] | None) -> list[str]:
    # typer splits an environment variable on whitespace; commas are accepted too.
    return [part for value in values or [] for part in value.replace(",", " ").split()]


@contextlib.contextmanager
def environment(args: dict[str, Any], domains: Sequence[str]) -> Iterator[Environment]:
    """Yield the run's settings, starting an in-process sandbox with --sandbox."""
    settings = settings_from_args(args)
    with logging_to_stderr(debug=bool(args.get("debug")), secrets=settings.secrets()):
        if not args.get("sandbox"):
            yield Environment(settings)
            return

        from o365dkim.sandbox.environment import SandboxEnvironment

        state_path: Path | None = args.get("sandbox_state")
        with SandboxEnvironment(domains, state_path=state_path) as sandbox:
            yield Environment(sandbox.apply(settings), sandbox.dns_provider())


def _console(output: OutputFormat) -> Console:
    return Console(stderr=output is OutputFormat.json, highlight=False, soft_wrap=True)


def _show_code(message: str) -> None:
    Console(stderr=True).print(message, highlight=False)


def run_enable(args: dict[str, Any]) -> int:
    """Run ``enable`` and return the exit code."""
    from o365dkim.reports import Result
    from o365dkim.settings import (
        build_checker,
        build_dns_provider,
        build_exchange_client,
        build_token_provider,
    )
    from o365dkim.workflow import EnableOptions, enable_domain

    domain = _custom_domain(args["domain"])
    key_size = _key_size(args["key_size"])
    output: OutputFormat = args["output"]
    interval = float(args["interval"])
    if args.get("sandbox"):
        interval = min(interval, SANDBOX_MAX_INTERVAL)
    options = EnableOptions(
        key_size=key_size,
        replace=bool(args["replace"]),
        timeout=float(args["timeout"]),
        interval=interval,
    )

    with environment(args, [domain]) as env:
        tokens = build_token_provider(env.settings, _show_code)
        exchange = build_exchange_client(env.settings, tokens)
        provider = env.provider or build_dns_provider(env.settings)
        checker = build_checker(env.settings)
        console = _console(output)
        reporter = (
            JsonReporter(Console(stderr=True))
            if output is OutputFormat.json
            else TextReporter(console)
        )
        try:
            report = enable_domain(
                domain,
                exchange=exchange,
                provider=provider,
                checker=checker,
                options=options,
                notify=reporter,
            )
        finally:
            reporter.close()

    _print_report(report, output)
    if report.result in (Result.ENABLED, Result.ALREADY_ENABLED):
        return EXIT_OK
    return EXIT_PENDING if report.result is Result.PENDING_DNS else EXIT_FAILED


def run_status(args: dict[str, Any]) -> int:
    """Run ``status`` and return the exit code."""
    from o365dkim.settings import build_checker, build_exchange_client, build_token_provider
    from o365dkim.workflow import domain_status

    domain = normalize_domain(args["domain"])
    with environment(args, [domain]) as env:
        exchange = build_exchange_client(
            env.settings, build_token_provider(env.settings, _show_code)
        )
        report = domain_status(domain, exchange=exchange, checker=build_checker(env.settings))
    _print_report(report, args["output"])
    return EXIT_OK


def run_records(args: dict[str, Any]) -> int:
    """Run ``records`` and return the exit code."""
    from o365dkim.settings import build_exchange_client, build_token_provider
    from o365dkim.workflow import EnableOptions, selector_records

    domain = _custom_domain(args["domain"])
    options = EnableOptions(key_size=_key_size(args["key_size"]))
    with environment(args, [domain]) as env:
        exchange = build_exchange_client(
            env.settings, build_token_provider(env.settings, _show_code)
        )
        found, changes = selector_records(
            domain, exchange=exchange, create=bool(args["create"]), options=options
        )
    if args["output"] is OutputFormat.json:
        print_json(records_to_dict(domain, found, changes))
    else:
        print_records_text(_console(args["output"]), found, changes)
    return EXIT_OK


def _print_report(report: Any, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(report.to_dict())
    else:
        print_report_text(_console(output), report)


def _custom_domain(value: str) -> str:
    domain = normalize_domain(value)
    require_custom_domain(domain)
    return domain


def _key_size(value: int) -> int:
    if value not in (1024, 2048):
        raise InvalidInputError(f"Invalid key size {value}: choose 1024 or 2048.")
    return value
