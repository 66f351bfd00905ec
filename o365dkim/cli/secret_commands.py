"""The ``secret set`` and ``secret delete`` commands: secrets in the system keyring.

A setting whose value is ``keyring:NAME`` (certificate password, client secret, DNS
provider options) is read from the keyring entry NAME when a command runs.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from o365dkim.cli import options as opt

EXIT_OK = 0

secret_app = typer.Typer(
    name="secret",
    help="Store secrets in the system keyring; settings refer to them as keyring:NAME.",
    no_args_is_help=True,
    add_completion=False,
)

SecretName = Annotated[
    str,
    typer.Argument(
        help="Name of the secret: letters, digits, '.', '_' or '-'.", show_default=False
    ),
]


@secret_app.command("set")
def set_command(
    name: SecretName,
    debug: opt.Debug = False,
    no_input: opt.NoInput = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Store a secret under NAME, replacing any earlier value.

    The value comes from a hidden prompt, or from stdin when stdin is not a terminal. It
    is never taken from the command line, where other users and shell history could see
    it. Refer to it in a setting as keyring:NAME, for example
    O365DKIM_CERTIFICATE_PASSWORD=keyring:pfx-password.

    Example: printf %s "$PFX_PASSWORD" | o365dkim secret set pfx-password

    Exit codes: 0 stored, 2 invalid name, empty value, no keyring backend, or a prompt
    needed while input is off.
    """
    from o365dkim.cli.runtime import run_command

    run_command(_run_set, dict(locals()))


@secret_app.command("delete")
def delete_command(
    name: SecretName,
    debug: opt.Debug = False,
    log_format: opt.LogFormatOption = opt.LogFormat.text,
) -> None:
    """Delete the secret stored under NAME.

    Example: o365dkim secret delete pfx-password

    Exit codes: 0 deleted, 2 invalid name, no such secret, or no keyring backend.
    """
    from o365dkim.cli.runtime import run_command

    run_command(_run_delete, dict(locals()))


def _run_set(args: dict[str, Any]) -> int:
    from o365dkim import secret_store
    from o365dkim.cli.logs import add_secrets
    from o365dkim.cli.runtime import input_policy, read_secret

    name = secret_store.validate_secret_name(args["name"])
    value = read_secret(input_policy(args), name)
    add_secrets([value])
    secret_store.set_secret(name, value)
    typer.echo(
        f"Stored secret {name} in the keyring ({secret_store.backend_name()}). "
        f"Use it in a setting as keyring:{name}."
    )
    return EXIT_OK


def _run_delete(args: dict[str, Any]) -> int:
    from o365dkim import secret_store

    name = secret_store.validate_secret_name(args["name"])
    secret_store.delete_secret(name)
    typer.echo(f"Deleted secret {name} from the keyring.")
    return EXIT_OK
