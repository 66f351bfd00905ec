"""What every command shares: the input policy, logging set-up, and errors as exit codes.

Runbooks depend on this contract. With no terminal on stdin, or with --no-input, nothing
prompts. A step that needs a person raises InputRequiredError (exit code 2), which names
the option or variable to set instead. Device code sign-in counts as such a step, because
nobody would enter the code and the run would wait 15 minutes for the code to expire.
A token already in the sign-in cache is used without asking anyone.
"""

from __future__ import annotations

import getpass
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

import typer

from o365dkim.cli.logs import json_lines, logging_to_stderr, mask, notice
from o365dkim.errors import InputRequiredError, O365DkimError

log = logging.getLogger("o365dkim.cli")

EXIT_INTERRUPTED = 130
#: Endings of option names whose values are secrets to mask in the log.
_SECRET_SUFFIXES = ("secret", "password", "token")
#: Context fields that JSON log lines carry when the command has them.
_CONTEXT_KEYS = ("domain",)

CommandBody = Callable[[dict[str, Any]], int]


@dataclass(frozen=True)
class InputPolicy:
    """Whether this run may ask a person for anything, and if not, why not."""

    allowed: bool
    reason: str = ""

    @classmethod
    def detect(cls, no_input: bool, stdin: TextIO | None = None) -> InputPolicy:
        """Return the policy for --no-input and the given stdin (default: sys.stdin)."""
        if no_input:
            return cls(False, "--no-input (O365DKIM_NO_INPUT) is set")
        stream = sys.stdin if stdin is None else stdin
        if stream is None or stream.closed or not stream.isatty():
            return cls(False, "stdin is not a terminal")
        return cls(True)

    def require(self, step: str, instead: str) -> None:
        """Raise InputRequiredError for ``step`` unless input is allowed."""
        if not self.allowed:
            raise InputRequiredError(f"{step} needs a person, but {self.reason}.", hint=instead)


def input_policy(args: dict[str, Any]) -> InputPolicy:
    """Return the input policy of a command from its parsed options."""
    return InputPolicy.detect(bool(args.get("no_input")))


def device_code_printer(policy: InputPolicy) -> Callable[[str], None]:
    """Return the ``show_code`` callback of device code sign-in.

    MSAL calls it only when the token cache has no token, just before polling starts.
    With input off it raises, so a runbook fails at once instead of polling until the
    code expires.
    """

    def show(message: str) -> None:
        policy.require(
            "Interactive sign-in (device code or browser)",
            "For automation, sign in as an app with --auth certificate, managed-identity, "
            "federated or client-secret (O365DKIM_AUTH), or run 'o365dkim login' at a "
            "terminal first so that the token cache has a token.",
        )
        notice(message)

    return show


def read_secret(policy: InputPolicy, name: str, stdin: TextIO | None = None) -> str:
    """Return a secret value: all of stdin when it is not a terminal, else a hidden prompt.

    Raises InputRequiredError when stdin gives nothing, or when only a prompt could.
    """
    stream = sys.stdin if stdin is None else stdin
    hint = f'Pipe the value on stdin, for example: printf %s "$VALUE" | o365dkim secret set {name}'
    if stream is not None and not stream.closed and not stream.isatty():
        value = stream.read().rstrip("\r\n")
        if not value:
            raise InputRequiredError(f"No value for secret {name} on stdin.", hint=hint)
        return value
    policy.require(f"Reading secret {name} from a prompt", hint)
    return getpass.getpass(f"Value of {name}: ")


def secret_values(args: dict[str, Any]) -> list[str]:
    """Return the values of options whose names mark them as secrets."""
    return [
        str(value)
        for key, value in args.items()
        if value and isinstance(value, str) and key.endswith(_SECRET_SUFFIXES)
    ]


def run_command(body: CommandBody, args: dict[str, Any]) -> NoReturn:
    """Run a command body with logging set up, and exit with its code or its error's code.

    Errors of o365dkim's own types become one line on stderr (a JSON object with
    --log-format json); the traceback appears only with --debug.
    """
    debug = bool(args.get("debug"))
    # Typer passes the LogFormat enum; library callers may pass the plain string.
    log_format = args.get("log_format") or "text"
    log_format = str(getattr(log_format, "value", log_format))
    context = {key: args[key] for key in _CONTEXT_KEYS if args.get(key)}
    with logging_to_stderr(
        debug=debug, secrets=secret_values(args), log_format=log_format, context=context
    ):
        try:
            code = body(args)
        except O365DkimError as err:
            report_error(err, debug=debug)
            code = err.exit_code
        except KeyboardInterrupt:
            notice("Interrupted. Run the same command again to continue.")
            code = EXIT_INTERRUPTED
    raise typer.Exit(code)


def report_error(err: O365DkimError, *, debug: bool) -> None:
    """Write ``err`` to stderr as one line, in the running command's log format."""
    if json_lines():
        log.error(
            "%s",
            err,
            exc_info=err if debug else None,
            extra={"error_type": type(err).__name__, "exit_code": err.exit_code},
        )
        return
    if debug:
        sys.stderr.write(mask("".join(traceback.format_exception(err))))
    sys.stderr.write(mask(f"Error: {err}") + "\n")
    sys.stderr.flush()
