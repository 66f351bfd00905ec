"""The ``o365dkim`` command: enable, status, records.

Exit codes: 0 done, 1 failed, 2 invalid input or usage, 3 waiting for DNS (run again).
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from o365dkim import __version__
from o365dkim.cli import options as opt

app = typer.Typer(
    name="o365dkim",
    help="Enable DKIM signing for Microsoft 365 domains, end to end.\n\n"
    "Exit codes: 0 done, 1 failed, 2 invalid input or usage, 3 waiting for DNS (run the "
    "same command again).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"o365dkim {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Enable DKIM signing for Microsoft 365 domains, end to end."""


@app.command()
def enable(
    domain: opt.Domain,
    tenant: opt.Tenant = None,
    client_id: opt.ClientId = None,
    auth: opt.Auth = None,
    certificate: opt.Certificate = None,
    certificate_password: opt.CertificatePassword = None,
    cloud: opt.Cloud = "worldwide",
    dns_provider: opt.DnsProviderName = "manual",
    rfc2136_server: opt.Rfc2136Server = None,
    rfc2136_key_name: opt.Rfc2136KeyName = None,
    rfc2136_key_secret: opt.Rfc2136KeySecret = None,
    rfc2136_key_algorithm: opt.Rfc2136KeyAlgorithm = "hmac-sha256",
    nameserver: opt.Nameservers = None,
    resolver: opt.Resolvers = None,
    timeout: opt.Timeout = 900.0,
    interval: opt.Interval = 15.0,
    key_size: opt.KeySize = 2048,
    replace: opt.Replace = False,
    output: opt.Output = opt.OutputFormat.text,
    sandbox: opt.Sandbox = False,
    sandbox_state: opt.SandboxState = None,
    debug: opt.Debug = False,
) -> None:
    """Create the DKIM config, publish both CNAMEs, wait for DNS, then turn signing on.

    Example: o365dkim enable contoso.com --dns-provider rfc2136 --rfc2136-server ns1.contoso.com
    """
    from o365dkim.cli import commands

    settings_args = dict(locals())
    with _errors_to_exit(debug, output):
        code = commands.run_enable(settings_args)
    raise typer.Exit(code)


@app.command()
def status(
    domain: opt.Domain,
    tenant: opt.Tenant = None,
    client_id: opt.ClientId = None,
    auth: opt.Auth = None,
    certificate: opt.Certificate = None,
    certificate_password: opt.CertificatePassword = None,
    cloud: opt.Cloud = "worldwide",
    nameserver: opt.Nameservers = None,
    resolver: opt.Resolvers = None,
    output: opt.Output = opt.OutputFormat.text,
    sandbox: opt.Sandbox = False,
    sandbox_state: opt.SandboxState = None,
    debug: opt.Debug = False,
) -> None:
    """Show whether DKIM signing is on and whether both CNAMEs are visible. Changes nothing.

    Example: o365dkim status contoso.com --output json
    """
    from o365dkim.cli import commands

    settings_args = dict(locals())
    with _errors_to_exit(debug, output):
        code = commands.run_status(settings_args)
    raise typer.Exit(code)


@app.command()
def records(
    domain: opt.Domain,
    create: bool = typer.Option(
        False, "--create", help="Create the DKIM config (signing off) if the domain has none."
    ),
    tenant: opt.Tenant = None,
    client_id: opt.ClientId = None,
    auth: opt.Auth = None,
    certificate: opt.Certificate = None,
    certificate_password: opt.CertificatePassword = None,
    cloud: opt.Cloud = "worldwide",
    key_size: opt.KeySize = 2048,
    output: opt.Output = opt.OutputFormat.text,
    sandbox: opt.Sandbox = False,
    sandbox_state: opt.SandboxState = None,
    debug: opt.Debug = False,
) -> None:
    """Print the two CNAME records to publish, for a DNS admin. Read-only unless --create.

    Example: o365dkim records contoso.com --create
    """
    from o365dkim.cli import commands

    settings_args = dict(locals())
    with _errors_to_exit(debug, output):
        code = commands.run_records(settings_args)
    raise typer.Exit(code)


@contextlib.contextmanager
def _errors_to_exit(debug: bool, output: Any) -> Iterator[None]:
    """Turn o365dkim's errors into one stderr line and the documented exit code."""
    from o365dkim.errors import O365DkimError

    try:
        yield
    except O365DkimError as err:
        if debug:
            traceback.print_exc(file=sys.stderr)
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted. Run the same command again to continue.", err=True)
        raise typer.Exit(130) from None


def run() -> None:
    """Entry point of the console script: read .env, then run the app."""
    _load_dotenv()
    app()


def _load_dotenv() -> None:
    """Load settings from ./.env without overriding the real environment.

    Empty values are skipped, so a copy of .env.example with blanks leaves defaults alone.
    """
    env_file = Path.cwd() / ".env"
    if not env_file.is_file():
        return
    from dotenv import dotenv_values

    for key, value in dotenv_values(env_file).items():
        if value and key not in os.environ:
            os.environ[key] = value


if __name__ == "__main__":
    run()
