"""The ``o365dkim plan`` command: show what ``enable`` would do, changing nothing."""

from __future__ import annotations

from o365dkim.cli import options as opt


def plan(  # noqa: PLR0917 -- a typer command takes one parameter per option
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
    rfc2136_server: opt.Rfc2136Server = None,
    rfc2136_key_name: opt.Rfc2136KeyName = None,
    rfc2136_key_secret: opt.Rfc2136KeySecret = None,
    rfc2136_key_algorithm: opt.Rfc2136KeyAlgorithm = "hmac-sha256",
    dns_option: opt.DnsOptions = None,
    replace: opt.Replace = False,
    output: opt.Output = opt.OutputFormat.text,
    sandbox: opt.Sandbox = False,
    sandbox_state: opt.SandboxState = None,
    debug: opt.Debug = False,
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Show what enable would do, reading Exchange and the DNS provider only.

    Example: o365dkim plan contoso.com --dns-provider rfc2136 --output json

    Exit codes: 0 changes to make or nothing to do, 1 conflict (a selector name has a
    different record: enable would stop unless --replace) or failed, 2 invalid input or
    usage, or sign-in needs a person while input is off.
    """
    from o365dkim.cli import commands
    from o365dkim.cli.runtime import run_command

    run_command(commands.run_plan, dict(locals()))
