"""The ``o365dkim`` command: enable, status, records, plan.

Exit codes: 0 done, 1 failed (or, for plan, a conflict), 2 invalid input, usage, or a step
that needs a person while input is off, 3 waiting for DNS (run again), 4 bulk rows not all
done, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from o365dkim import __version__
from o365dkim.cli import options as opt
from o365dkim.cli.bulk_command import bulk
from o365dkim.cli.dns_commands import dns_app
from o365dkim.cli.plan_command import plan
from o365dkim.cli.secret_commands import secret_app
from o365dkim.cli.signin_commands import login, logout, whoami

app = typer.Typer(
    name="o365dkim",
    help="Enable DKIM signing for Microsoft 365 domains, end to end.\n\n"
    "Exit codes: 0 done, 1 failed (plan: conflict), 2 invalid input or usage, or a step "
    "needs a person while input is off, 3 waiting for DNS (run the same command again), "
    "4 bulk: some rows failed, are invalid or are waiting for DNS, 130 interrupted.",
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
    client_secret: opt.ClientSecret = None,
    managed_identity_client_id: opt.ManagedIdentityClientId = None,
    federated_token_file: opt.FederatedTokenFile = None,
    cloud: opt.Cloud = "worldwide",
    dns_provider: opt.DnsProviderName = "manual",
    dns_option: opt.DnsOptions = None,
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
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Create the DKIM config, publish both CNAMEs, wait for DNS, then turn signing on.

    Example: o365dkim enable contoso.com --dns-provider rfc2136 --rfc2136-server ns1.contoso.com

    Exit codes: 0 signing is enabled (now or before), 1 failed, 2 invalid input or usage, or
    a step needs a person while input is off, 3 waiting for DNS (run the same command again).
    """
    from o365dkim.cli import commands
    from o365dkim.cli.runtime import run_command

    run_command(commands.run_enable, dict(locals()))


@app.command()
def status(
    domain: opt.Domain,
    tenant: opt.Tenant = None,
    client_id: opt.ClientId = None,
    auth: opt.Auth = None,
    certificate: opt.Certificate = None,
    certificate_password: opt.CertificatePassword = None,
    client_secret: opt.ClientSecret = None,
    managed_identity_client_id: opt.ManagedIdentityClientId = None,
    federated_token_file: opt.FederatedTokenFile = None,
    cloud: opt.Cloud = "worldwide",
    nameserver: opt.Nameservers = None,
    resolver: opt.Resolvers = None,
    output: opt.Output = opt.OutputFormat.text,
    sandbox: opt.Sandbox = False,
    sandbox_state: opt.SandboxState = None,
    debug: opt.Debug = False,
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Show whether DKIM signing is on and whether both CNAMEs are visible. Changes nothing.

    Example: o365dkim status contoso.com --output json

    Exit codes: 0 state shown (whatever it is), 1 failed, 2 invalid input or usage, or
    sign-in needs a person while input is off.
    """
    from o365dkim.cli import commands
    from o365dkim.cli.runtime import run_command

    run_command(commands.run_status, dict(locals()))


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
    client_secret: opt.ClientSecret = None,
    managed_identity_client_id: opt.ManagedIdentityClientId = None,
    federated_token_file: opt.FederatedTokenFile = None,
    cloud: opt.Cloud = "worldwide",
    key_size: opt.KeySize = 2048,
    output: opt.Output = opt.OutputFormat.text,
    sandbox: opt.Sandbox = False,
    sandbox_state: opt.SandboxState = None,
    debug: opt.Debug = False,
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Print the two CNAME records to publish, for a DNS admin. Read-only unless --create.

    Example: o365dkim records contoso.com --create

    Exit codes: 0 records shown, 1 failed or no DKIM config (use --create), 2 invalid input
    or usage, or sign-in needs a person while input is off.
    """
    from o365dkim.cli import commands
    from o365dkim.cli.runtime import run_command

    run_command(commands.run_records, dict(locals()))


app.command()(plan)
app.command()(bulk)
app.command()(login)
app.command()(logout)
app.command()(whoami)
app.add_typer(secret_app, name="secret")
app.add_typer(dns_app, name="dns")


def run() -> None:
    """Entry point of the console script: read .env, then run the app.

    Usage errors (unknown option, invalid value) are printed as one line with exit code 2.
    """
    _load_dotenv()
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="o365dkim", standalone_mode=False)
    except typer.Abort:
        typer.echo("Interrupted. Run the same command again to continue.", err=True)
        sys.exit(130)
    except Exception as err:
        # Click's UsageError, matched by shape because recent typer releases vendor Click.
        if getattr(err, "exit_code", None) != 2 or not hasattr(err, "format_message"):
            raise
        context = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError" and context is not None:
            typer.echo(context.get_help())
        else:
            message = str(err.format_message()).rstrip()
            if not message.endswith("."):
                message += "."
            typer.echo(f"Error: {message} See '{_help_command(context)}'.", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def _help_command(context: Any) -> str:
    if context is not None and context.parent is not None:
        return f"o365dkim {context.info_name} --help"
    return "o365dkim --help"


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
