"""The ``o365dkim bulk`` command: enable DKIM for every domain in a CSV, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from o365dkim.cli import options as opt

BULK = "Bulk"


def bulk(  # noqa: PLR0917 -- a typer command takes one parameter per option
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header: domain (required), tenant, profile, dns_provider, zone, "
            "key_size, and any columns of your own.",
            show_default=False,
        ),
    ],
    plan: Annotated[
        bool, typer.Option("--plan", help="Show what each row would do; change nothing.")
    ] = False,
    results: Annotated[
        Path | None,
        typer.Option(help="Results file, .csv or .json. Default: FILE.results.csv beside FILE."),
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(help="SQLite journal used to resume. Default: beside the results file."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, rich_help_panel=BULK, help="Admin API calls in flight over all tenants."
        ),
    ] = 16,
    tenant_limit: Annotated[
        int,
        typer.Option(
            min=1, max=10, rich_help_panel=BULK, help="Admin API calls in flight for one tenant."
        ),
    ] = 3,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            rich_help_panel=BULK,
            help="Publish and return; rows not yet visible end as pending_dns. Run the same "
            "command later to finish them.",
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            rich_help_panel=BULK,
            help="Glob of domains that domain=* rows leave out, such as '*.mail.contoso.com'. "
            "Repeat for more.",
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(rich_help_panel=BULK, help="CSV delimiter. Default: detected (, ; or tab)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            envvar="O365DKIM_CONFIG",
            help="TOML file with named profiles. Default: the user config folder's "
            "o365dkim/config.toml.",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(envvar="O365DKIM_PROFILE", help="Profile for rows without a profile column."),
    ] = None,
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
    rfc2136_server: opt.Rfc2136Server = None,
    rfc2136_key_name: opt.Rfc2136KeyName = None,
    rfc2136_key_secret: opt.Rfc2136KeySecret = None,
    rfc2136_key_algorithm: opt.Rfc2136KeyAlgorithm = "hmac-sha256",
    dns_option: opt.DnsOptions = None,
    nameserver: opt.Nameservers = None,
    resolver: opt.Resolvers = None,
    replace: opt.Replace = False,
    timeout: opt.Timeout = 900.0,
    interval: opt.Interval = 15.0,
    output: opt.Output = opt.OutputFormat.text,
    sandbox: opt.Sandbox = False,
    sandbox_state: opt.SandboxState = None,
    sandbox_latency: Annotated[
        float, typer.Option(hidden=True, min=0, help="Seconds added to each sandbox API call.")
    ] = 0.0,
    sandbox_lag: Annotated[
        float, typer.Option(hidden=True, min=0, help="Seconds the sandbox secondary lags.")
    ] = 3.0,
    sandbox_report: Annotated[
        Path | None,
        typer.Option(hidden=True, help="JSON file for the sandbox's call and token counts."),
    ] = None,
    debug: opt.Debug = False,
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Enable DKIM for every domain in a CSV, across tenants, resumably.

    Example: o365dkim bulk customers.csv --plan, then o365dkim bulk customers.csv

    Every step is journaled: after an interruption, run the same command again to continue.
    Exit codes: 0 every row done, 2 unusable input, 4 some rows failed, are invalid or
    are waiting for DNS (run the same command again later), 130 interrupted. With --plan:
    0 when every row can run, 4 when a row is invalid, failed or has a conflict.
    """
    from o365dkim.cli.bulk_run import run_bulk
    from o365dkim.cli.runtime import run_command

    run_command(run_bulk, dict(locals()))
