"""Command bodies: turn parsed options into settings, call the library, print the result."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from o365dkim.auth import TokenProvider
from o365dkim.cli.logs import logging_to_stderr
from o365dkim.cli.options import OutputFormat
from o365dkim.cli.output import (
    JsonReporter,
    TextReporter,
    print_json,
    print_plan_text,
    print_records_text,
    print_report_text,
    records_to_dict,
)
from o365dkim.cli.runtime import device_code_printer, input_policy
from o365dkim.dns.options import parse_option_pairs
from o365dkim.dns.provider import DnsProvider
from o365dkim.domains import normalize_domain, require_custom_domain
from o365dkim.errors import InvalidInputError
from o365dkim.settings import Settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 3
#: In --sandbox runs the secondary lags by seconds, so checks run at least this often.
SANDBOX_MAX_INTERVAL = 1.0
#: Longest --timeout accepted, in seconds. Microsoft documents that its own CNAME check
#: can take up to 4 days.
MAX_TIMEOUT = 7 * 24 * 3600.0


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
    dns_options.update(parse_option_pairs(args.get("dns_option")))
    return Settings(
        tenant=args.get("tenant"),
        client_id=args.get("client_id"),
        auth=args.get("auth"),
        certificate=args.get("certificate"),
        certificate_password=args.get("certificate_password"),
        client_secret=args.get("client_secret"),
        managed_identity_client_id=args.get("managed_identity_client_id"),
        federated_token_file=args.get("federated_token_file"),
        token_cache=os.environ.get("O365DKIM_TOKEN_CACHE") or None,
        token_cache_encryption=os.environ.get("O365DKIM_TOKEN_CACHE_ENCRYPTION") or "auto",
        cloud=args.get("cloud") or "worldwide",
        dns_provider=args.get("dns_provider") or "manual",
        dns_options=dns_options,
        nameservers=_servers(args.get("nameserver"), "O365DKIM_NAMESERVERS"),
        resolvers=_servers(args.get("resolver"), "O365DKIM_RESOLVERS"),
        # Overrides for a sandbox tenant outside this process (tests); not shown in --help.
        authority_host=os.environ.get("O365DKIM_AUTHORITY_HOST") or None,
        api_base=os.environ.get("O365DKIM_API_BASE") or None,
        ca_bundle=os.environ.get("O365DKIM_CA_BUNDLE") or None,
    )


def _servers(values: Sequence[str] | None, variable: str) -> list[str]:
    """Return servers from repeated options, else from a space- or comma-separated variable."""
    if values:
        return list(values)
    return os.environ.get(variable, "").replace(",", " ").split()


#: Options that --sandbox replaces with its own tenant and DNS servers.
_SANDBOX_REPLACES = {
    "tenant": "--tenant",
    "client_id": "--client-id",
    "auth": "--auth",
    "client_secret": "--client-secret",
    "managed_identity_client_id": "--managed-identity-client-id",
    "federated_token_file": "--federated-token-file",
    "certificate": "--certificate",
    "certificate_password": "--certificate-password",
    "rfc2136_server": "--rfc2136-server",
    "rfc2136_key_name": "--rfc2136-key-name",
    "rfc2136_key_secret": "--rfc2136-key-secret",
    "dns_option": "--dns-option",
    "nameserver": "--nameserver",
    "resolver": "--resolver",
}


def check_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Check settings that need no network, before anything is started or called."""
    from o365dkim.clouds import get_cloud
    from o365dkim.settings import build_checker

    get_cloud(settings.cloud)
    build_checker(settings)
    sandbox_state: Path | None = args.get("sandbox_state")
    if not args.get("sandbox"):
        if sandbox_state is not None:
            raise InvalidInputError(
                f"Invalid option --sandbox-state {sandbox_state}: it applies only with "
                "--sandbox. Add --sandbox, or unset O365DKIM_SANDBOX_STATE."
            )
        return
    if sandbox_state is not None:
        _check_state_path(sandbox_state)
    ignored = [flag for key, flag in _SANDBOX_REPLACES.items() if args.get(key)]
    if args.get("dns_provider") not in (None, "manual"):
        ignored.append("--dns-provider")
    if ignored:
        log.warning(
            "--sandbox uses its own tenant and DNS servers, so these settings are ignored: %s",
            ", ".join(ignored),
        )


def _check_state_path(path: Path) -> None:
    if str(path).strip() in ("", "."):
        raise InvalidInputError("Invalid --sandbox-state '': give a file name such as state.json.")
    if path.is_dir():
        raise InvalidInputError(f"Invalid --sandbox-state {path}: it is a folder, not a file.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise InvalidInputError(
            f"Invalid --sandbox-state {path}: the folder {parent} does not exist or is not "
            "writable."
        )


@contextlib.contextmanager
def environment(args: dict[str, Any], domains: Sequence[str]) -> Iterator[Environment]:
    """Yield the run's settings, starting an in-process sandbox with --sandbox."""
    from o365dkim.secret_store import resolve_settings_secrets

    settings = resolve_settings_secrets(settings_from_args(args))
    with logging_to_stderr(debug=bool(args.get("debug")), secrets=settings.secrets()):
        check_arguments(args, settings)
        if not args.get("sandbox"):
            yield Environment(settings)
            return

        from o365dkim.sandbox.environment import SandboxEnvironment

        state_path: Path | None = args.get("sandbox_state")
        with SandboxEnvironment(domains, state_path=state_path) as sandbox:
            yield Environment(sandbox.apply(settings), sandbox.dns_provider())


def _console(output: OutputFormat) -> Console:
    return Console(stderr=output is OutputFormat.json, highlight=False, soft_wrap=True)


def _token_provider(settings: Settings, args: dict[str, Any]) -> TokenProvider:
    """Return the sign-in that the settings describe, keeping to the input policy.

    Device code sign-in checks the policy in its show_code callback (InputRequiredError,
    exit code 2). Browser sign-in has no callback before it opens a browser, so with input
    off it gets ``interactive=False`` and uses only a cached sign-in.
    """
    from o365dkim.auth.factory import open_sign_in, resolve_auth_mode

    policy = input_policy(args)
    interactive = policy.allowed or resolve_auth_mode(settings) != "browser"
    return open_sign_in(settings, device_code_printer(policy), interactive=interactive).provider


def run_enable(args: dict[str, Any]) -> int:
    """Run ``enable`` and return the exit code."""
    from o365dkim.reports import Result
    from o365dkim.settings import (
        build_checker,
        build_dns_provider,
        build_exchange_client,
    )
    from o365dkim.workflow import EnableOptions, enable_domain

    domain = _custom_domain(args["domain"])
    key_size = _key_size(args["key_size"])
    output: OutputFormat = args["output"]
    interval = float(args["interval"])
    timeout = float(args["timeout"])
    if not math.isfinite(timeout) or timeout > MAX_TIMEOUT:
        raise InvalidInputError(
            f"Invalid timeout {args['timeout']}: give seconds from 0 to {MAX_TIMEOUT:.0f} (one "
            "week). A run that times out can be continued by running it again."
        )
    if args.get("sandbox"):
        interval = min(interval, SANDBOX_MAX_INTERVAL)
    options = EnableOptions(
        key_size=key_size,
        replace=bool(args["replace"]),
        timeout=timeout,
        interval=interval,
    )

    with environment(args, [domain]) as env:
        # DNS settings are checked before sign-in, which already contacts the authority.
        provider = env.provider or build_dns_provider(env.settings)
        checker = build_checker(env.settings)
        tokens = _token_provider(env.settings, args)
        exchange = build_exchange_client(env.settings, tokens)
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
    from o365dkim.settings import build_checker, build_exchange_client
    from o365dkim.workflow import domain_status

    domain = normalize_domain(args["domain"])
    with environment(args, [domain]) as env:
        exchange = build_exchange_client(env.settings, _token_provider(env.settings, args))
        report = domain_status(domain, exchange=exchange, checker=build_checker(env.settings))
    _print_report(report, args["output"])
    return EXIT_OK


def run_records(args: dict[str, Any]) -> int:
    """Run ``records`` and return the exit code."""
    from o365dkim.settings import build_exchange_client
    from o365dkim.workflow import EnableOptions, selector_records

    domain = _custom_domain(args["domain"])
    options = EnableOptions(key_size=_key_size(args["key_size"]))
    with environment(args, [domain]) as env:
        exchange = build_exchange_client(env.settings, _token_provider(env.settings, args))
        found, changes = selector_records(
            domain, exchange=exchange, create=bool(args["create"]), options=options
        )
    if args["output"] is OutputFormat.json:
        print_json(records_to_dict(domain, found, changes))
    else:
        print_records_text(_console(args["output"]), found, changes)
    return EXIT_OK


def run_plan(args: dict[str, Any]) -> int:
    """Run ``plan`` and return the exit code: 1 when enable would stop at a conflict."""
    from o365dkim.plan import PlanOutcome, plan_domain
    from o365dkim.settings import build_dns_provider, build_exchange_client

    domain = _custom_domain(args["domain"])
    with environment(args, [domain]) as env:
        provider = env.provider or build_dns_provider(env.settings)
        tokens = _token_provider(env.settings, args)
        exchange = build_exchange_client(env.settings, tokens)
        report = plan_domain(
            domain, exchange=exchange, provider=provider, replace=bool(args["replace"])
        )
    if args["output"] is OutputFormat.json:
        print_json(report.to_dict())
    else:
        print_plan_text(_console(args["output"]), report)
    return EXIT_FAILED if report.outcome is PlanOutcome.CONFLICT else EXIT_OK


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
