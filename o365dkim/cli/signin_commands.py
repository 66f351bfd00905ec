"""The ``login``, ``logout`` and ``whoami`` commands: the token cache as a user sees it.

Only typer and the option declarations load at import time, so that ``--help`` stays fast;
MSAL and the rest load when a command runs.
"""

from __future__ import annotations

from typing import Any

from o365dkim.cli import options as opt

EXIT_OK = 0


def login(  # noqa: PLR0917 -- a typer command takes one parameter per option
    tenant: opt.Tenant = None,
    client_id: opt.ClientId = None,
    auth: opt.Auth = None,
    certificate: opt.Certificate = None,
    certificate_password: opt.CertificatePassword = None,
    client_secret: opt.ClientSecret = None,
    managed_identity_client_id: opt.ManagedIdentityClientId = None,
    federated_token_file: opt.FederatedTokenFile = None,
    cloud: opt.Cloud = "worldwide",
    output: opt.Output = opt.OutputFormat.text,
    debug: opt.Debug = False,
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Sign in and keep the tokens in the token cache, so later commands sign in silently.

    A valid cached sign-in for the same settings is reused without asking. The cache is
    encrypted where the system offers a keyring, else a file only you can read. Set
    O365DKIM_TOKEN_CACHE to move it, or to 'none' to keep tokens in memory only.

    Example: o365dkim login --auth device-code --tenant contoso.onmicrosoft.com

    Exit codes: 0 signed in, 1 sign-in failed, 2 invalid input or usage, or sign-in needs a
    person while input is off.
    """
    from o365dkim.cli.runtime import run_command

    run_command(_run_login, dict(locals()))


def whoami(  # noqa: PLR0917 -- a typer command takes one parameter per option
    tenant: opt.Tenant = None,
    client_id: opt.ClientId = None,
    auth: opt.Auth = None,
    certificate: opt.Certificate = None,
    certificate_password: opt.CertificatePassword = None,
    client_secret: opt.ClientSecret = None,
    managed_identity_client_id: opt.ManagedIdentityClientId = None,
    federated_token_file: opt.FederatedTokenFile = None,
    cloud: opt.Cloud = "worldwide",
    output: opt.Output = opt.OutputFormat.text,
    debug: opt.Debug = False,
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Show the tenant, the app or user, the cloud and the token's expiry. Never the token.

    Person sign-ins (device-code, browser) come only from the token cache and never
    prompt. App-only modes sign in if the cache has no token.

    Example: o365dkim whoami --output json

    Exit codes: 0 signed in, 1 not signed in or sign-in failed, 2 invalid input or usage.
    """
    from o365dkim.cli.runtime import run_command

    run_command(_run_whoami, dict(locals()))


def logout(
    output: opt.Output = opt.OutputFormat.text,
    debug: opt.Debug = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Remove every cached account and token of o365dkim from the token cache.

    Secrets in the keyring stay; remove them with 'o365dkim secret delete NAME'.

    Example: o365dkim logout

    Exit codes: 0 done (also when the cache was empty), 1 failed, 2 invalid settings.
    """
    from o365dkim.cli.runtime import run_command

    run_command(_run_logout, dict(locals()))


def _run_login(args: dict[str, Any]) -> int:
    return _sign_in_and_show(args, interactive=True)


def _run_whoami(args: dict[str, Any]) -> int:
    return _sign_in_and_show(args, interactive=False)


def _sign_in_and_show(args: dict[str, Any], *, interactive: bool) -> int:
    from rich.console import Console

    from o365dkim.auth.factory import open_sign_in
    from o365dkim.cli.commands import environment
    from o365dkim.cli.output import print_identity_text, print_json
    from o365dkim.cli.runtime import device_code_printer, input_policy

    with environment(args, []) as env:
        show_message = device_code_printer(input_policy(args))
        sign_in = open_sign_in(env.settings, show_message, interactive=interactive)
        identity = sign_in.describe(sign_in.provider.get_token())
    if args["output"] is opt.OutputFormat.json:
        print_json(identity)
    else:
        print_identity_text(Console(highlight=False, soft_wrap=True), identity)
    return EXIT_OK


def _run_logout(args: dict[str, Any]) -> int:
    from rich.console import Console

    from o365dkim.auth.factory import open_settings_cache
    from o365dkim.cli.commands import settings_from_args
    from o365dkim.cli.output import print_json, print_logout_text

    settings = settings_from_args(args)
    store = open_settings_cache(settings)
    removed = store.clear()
    data = {
        "removed": removed.to_dict(),
        "token_cache": {
            "location": str(store.location) if store.location else None,
            "persistent": store.persistent,
            "encrypted": store.encrypted,
        },
    }
    if args["output"] is opt.OutputFormat.json:
        print_json(data)
    else:
        print_logout_text(Console(highlight=False, soft_wrap=True), data)
    return EXIT_OK
