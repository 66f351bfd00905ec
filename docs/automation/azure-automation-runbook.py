#!/usr/bin/env python3
"""Azure Automation runbook (Python 3.10): enable DKIM for one domain as the account's identity.

Runbook parameter: the domain, such as contoso.com. Further parameters are passed on to
``o365dkim enable`` unchanged.

Set-up, once per Automation account:

1. Turn on the account's system-assigned managed identity (or assign a user-assigned one
   and set the Automation variable O365DKIM_MANAGED_IDENTITY_CLIENT_ID to its client ID).
   Give that identity the Exchange.ManageAsApp application permission and the Exchange
   Administrator role, as docs/permissions.md describes for an app registration.
2. Import the o365dkim wheel and its dependencies as Python 3.10 packages.
3. Create Automation variables named like the O365DKIM_* environment variables that you
   need, such as O365DKIM_DNS_PROVIDER and the provider's settings. Store secrets (a DNS
   API token, a TSIG key) as encrypted variables.

In Azure, the job's IDENTITY_ENDPOINT and IDENTITY_HEADER variables lead MSAL to the
managed identity endpoint. Outside Azure (for a test), the automationassets module is
missing and the O365DKIM_* variables come from the environment instead.

The runbook prints enable's JSON result and exits with o365dkim's exit code, so the job
ends as Failed unless DKIM signing is enabled. Exit code 3 (waiting for DNS) means that
the next scheduled run continues where this one stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys

#: Automation variables copied into o365dkim's environment when they exist.
VARIABLES = (
    "O365DKIM_MANAGED_IDENTITY_CLIENT_ID",
    "O365DKIM_CLOUD",
    "O365DKIM_DNS_PROVIDER",
    "O365DKIM_RFC2136_SERVER",
    "O365DKIM_RFC2136_KEY_NAME",
    "O365DKIM_RFC2136_KEY_SECRET",
    "O365DKIM_RFC2136_KEY_ALGORITHM",
    "O365DKIM_NAMESERVERS",
    "O365DKIM_TIMEOUT",
)
#: Azure Automation stops a cloud job after three hours; stay well inside that.
TIMEOUT_SECONDS = "1800"


def automation_variables() -> dict[str, str]:
    """Return the Automation variables in VARIABLES that are set (decrypted by Azure)."""
    try:
        import automationassets  # type: ignore[import-not-found]  # only inside Azure
    except ImportError:
        return {}
    values: dict[str, str] = {}
    for name in VARIABLES:
        value = _variable(automationassets, name)
        if value:
            values[name] = value
    return values


def _variable(assets: object, name: str) -> str | None:
    try:
        value = assets.get_automation_variable(name)  # type: ignore[attr-defined]
    except Exception:
        # A variable that does not exist raises; it means "not set" here.
        return None
    return str(value) if value is not None else None


def main(argv: list[str]) -> int:
    """Run ``o365dkim enable`` for the domain in argv and return its exit code."""
    if not argv:
        print("Give the domain as the runbook parameter, such as contoso.com.")
        return 2
    env = {**os.environ, **automation_variables()}
    env.setdefault("O365DKIM_TIMEOUT", TIMEOUT_SECONDS)
    command = [
        sys.executable,
        "-m",
        "o365dkim",
        "enable",
        argv[0],
        "--auth",
        "managed-identity",
        "--no-input",
        "--output",
        "json",
        "--log-format",
        "json",
        *argv[1:],
    ]
    # Secrets travel in the environment, never in the command line that the job log shows.
    completed = subprocess.run(  # noqa: S603 -- an argument list, no shell
        command, env=env, stdin=subprocess.DEVNULL, check=False
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
