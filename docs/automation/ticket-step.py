#!/usr/bin/env python3
"""Ticket automation step: domain in, JSON result out, o365dkim's exit code as ticket state.

Usage:
    ticket-step.py DOMAIN [EXTRA O365DKIM OPTIONS...]
    echo '{"domain": "contoso.com"}' | ticket-step.py

Runs ``o365dkim enable DOMAIN --output json --no-input --log-format json`` and writes one
JSON object to stdout:

    {"domain": ..., "ticket_state": ..., "exit_code": ..., "comment": ...,
     "result": <enable's JSON output, or null>, "error": <error message, or null>}

ticket_state by exit code: 0 resolved, 3 waiting (DNS is not visible everywhere yet: run
this step again later), 1 needs_attention (the error names what to check), 2 rejected
(invalid domain or settings, or a sign-in that needs a person), anything else retry.

Settings come from O365DKIM_* environment variables, set by the ticket system's worker;
secrets go there too, never on the command line. O365DKIM_COMMAND overrides the command
that runs o365dkim (default: ``o365dkim``). Standard library only, Python 3.10 or newer.
The step exits 0 whenever it wrote a result, so the ticket system reads the state from
the JSON; it exits 2 when it gets no domain.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Any

STATES = {
    0: ("resolved", "DKIM signing is enabled."),
    3: (
        "waiting",
        "The DNS records are published but not visible at every name server yet; "
        "this step runs again later.",
    ),
    1: ("needs_attention", "o365dkim failed; see the error."),
    2: ("rejected", "The domain or the settings are invalid; see the error."),
}
RETRY = ("retry", "o365dkim stopped unexpectedly; run this step again.")


def read_request(argv: list[str]) -> tuple[str, list[str]]:
    """Return the domain and extra o365dkim options, from argv or a JSON object on stdin."""
    if argv:
        return argv[0], argv[1:]
    request = json.loads(sys.stdin.read() or "{}")
    return str(request.get("domain", "")), []


def run_enable(domain: str, extra: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``o365dkim enable`` without prompts, with JSON on stdout and JSON log lines."""
    command = shlex.split(os.environ.get("O365DKIM_COMMAND", "o365dkim"))
    # The domain is one list item, never shell text, so it cannot inject a command.
    return subprocess.run(  # noqa: S603
        [
            *command,
            "enable",
            domain,
            "--output",
            "json",
            "--no-input",
            "--log-format",
            "json",
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def last_error(stderr: str) -> str | None:
    """Return the message of the last ERROR log line, or the last line that is not JSON."""
    message = None
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            message = line.strip() or message
            continue
        if isinstance(record, dict) and record.get("level") == "ERROR":
            message = str(record.get("message"))
    return message


def ticket_update(domain: str, completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Map one o365dkim run to the ticket's new state and comment."""
    state, comment = STATES.get(completed.returncode, RETRY)
    try:
        result = json.loads(completed.stdout) if completed.stdout.strip() else None
    except ValueError:
        result = None
    error = last_error(completed.stderr)
    if isinstance(result, dict) and result.get("error"):
        error = result["error"]["message"]
    return {
        "domain": domain,
        "ticket_state": state,
        "exit_code": completed.returncode,
        "comment": f"{comment} {error}" if error else comment,
        "result": result,
        "error": error,
    }


def main(argv: list[str]) -> int:
    """Run the step and write the ticket update as JSON."""
    domain, extra = read_request(argv)
    if not domain:
        sys.stderr.write(
            "ticket-step: no domain: give it as an argument or as "
            '{"domain": "contoso.com"} on stdin.\n'
        )
        return 2
    update = ticket_update(domain, run_enable(domain, extra))
    sys.stdout.write(json.dumps(update, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
