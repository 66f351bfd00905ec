"""The ``dns test`` command: check a DNS provider's credentials with read-only calls."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from o365dkim.cli import options as opt

EXIT_OK = 0
#: The rfc2136 provider's settings come from its own options in ``enable``; here from these.
_RFC2136_VARIABLES = {
    "rfc2136_server": "O365DKIM_RFC2136_SERVER",
    "rfc2136_key_name": "O365DKIM_RFC2136_KEY_NAME",
    "rfc2136_key_secret": "O365DKIM_RFC2136_KEY_SECRET",
    "rfc2136_key_algorithm": "O365DKIM_RFC2136_KEY_ALGORITHM",
}

dns_app = typer.Typer(
    name="dns",
    help="Check DNS providers without changing any record.",
    no_args_is_help=True,
    add_completion=False,
)

ProviderName = Annotated[
    str,
    typer.Argument(
        help="DNS provider: powerdns, cloudflare, route53, azure, rfc2136, lexicon:NAME, or an "
        "installed provider.",
        show_default=False,
    ),
]
Zone = Annotated[
    str,
    typer.Option(
        "--zone",
        help="Zone to find and read, such as contoso.com; a name inside the zone works too.",
        show_default=False,
    ),
]


@dns_app.command("test")
def test_command(  # noqa: PLR0917 -- a typer command takes one parameter per option
    provider: ProviderName,
    zone: Zone,
    dns_option: opt.DnsOptions = None,
    output: opt.Output = opt.OutputFormat.text,
    debug: opt.Debug = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Check a DNS provider's credentials and read permission, changing nothing.

    Finds the zone, reads the records at the name given, and runs the provider's own
    read-only checks (Cloudflare: token status and CNAME flattening). Write permission
    is not checked, because that needs a write; docs/providers/ lists what to grant.

    Example: o365dkim dns test cloudflare --zone contoso.com --dns-option api_token=keyring:cf

    Exit codes: 0 the checks passed, 1 a check failed (such as a rejected token), 2 invalid
    input or configuration.
    """
    from o365dkim.cli.runtime import run_command

    run_command(_run_test, dict(locals()))


def _run_test(args: dict[str, Any]) -> int:
    from o365dkim.cli.commands import settings_from_args
    from o365dkim.cli.logs import add_secrets
    from o365dkim.cli.output import print_json
    from o365dkim.domains import normalize_domain
    from o365dkim.secret_store import resolve_settings_secrets
    from o365dkim.settings import build_dns_provider

    zone = normalize_domain(args["zone"])
    settings_args = {"dns_provider": args["provider"], "dns_option": args.get("dns_option")}
    if args["provider"] == "rfc2136":
        for key, variable in _RFC2136_VARIABLES.items():
            settings_args[key] = os.environ.get(variable)
    settings = resolve_settings_secrets(settings_from_args(settings_args))
    add_secrets(settings.secrets())

    report = build_dns_provider(settings).check_access(zone)

    if args["output"] is opt.OutputFormat.json:
        print_json(
            {
                "provider": report.provider,
                "zone": report.zone,
                "checks": list(report.checks),
                "warnings": list(report.warnings),
            }
        )
    else:
        for line in report.checks:
            typer.echo(f"ok: {line}")
        for line in report.warnings:
            typer.echo(f"warning: {line}")
        typer.echo(f"The {report.provider} provider can read the zone {report.zone}.")
    return EXIT_OK
