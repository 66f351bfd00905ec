"""Option declarations shared by the commands, each with its O365DKIM_* environment variable."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

SIGN_IN = "Sign-in"
DNS = "DNS"
SANDBOX = "Sandbox"


class OutputFormat(str, Enum):
    """Format of the result written to stdout."""

    text = "text"
    json = "json"


class LogFormat(str, Enum):
    """Format of the log written to stderr."""

    text = "text"
    json = "json"


Domain = Annotated[
    str, typer.Argument(help="Mail domain, such as contoso.com.", show_default=False)
]
Tenant = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_TENANT",
        rich_help_panel=SIGN_IN,
        help="Tenant ID (GUID) or initial domain such as contoso.onmicrosoft.com.",
    ),
]
ClientId = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_CLIENT_ID",
        rich_help_panel=SIGN_IN,
        help="Application (client) ID. Device code defaults to the Exchange module's "
        "public client.",
    ),
]
Auth = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_AUTH",
        rich_help_panel=SIGN_IN,
        help="Sign-in mode. App-only: certificate, client-secret, federated, "
        "managed-identity. A person: device-code, browser. Default: certificate when "
        "--certificate is set, client-secret when --client-secret is, federated when "
        "--federated-token-file is, otherwise device-code.",
    ),
]
Certificate = Annotated[
    Path | None,
    typer.Option(
        envvar="O365DKIM_CERTIFICATE",
        rich_help_panel=SIGN_IN,
        help="PEM file (private key and certificate) or PFX file for app-only sign-in.",
    ),
]
CertificatePassword = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_CERTIFICATE_PASSWORD",
        rich_help_panel=SIGN_IN,
        show_default=False,
        help="Password of the PFX or encrypted PEM, or keyring:NAME. Prefer the environment "
        "variable or the keyring.",
    ),
]
ClientSecret = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_CLIENT_SECRET",
        rich_help_panel=SIGN_IN,
        show_default=False,
        help="Client secret of the app (--auth client-secret), or keyring:NAME. Prefer the "
        "environment variable or the keyring.",
    ),
]
ManagedIdentityClientId = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_MANAGED_IDENTITY_CLIENT_ID",
        rich_help_panel=SIGN_IN,
        help="Client ID of a user-assigned managed identity (--auth managed-identity). "
        "Default: the system-assigned identity.",
    ),
]
FederatedTokenFile = Annotated[
    Path | None,
    typer.Option(
        envvar=["O365DKIM_FEDERATED_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE"],
        rich_help_panel=SIGN_IN,
        help="File holding the federated token (--auth federated), read for every sign-in. "
        "Without it: O365DKIM_FEDERATED_TOKEN, or GitHub Actions' OIDC token.",
    ),
]
Cloud = Annotated[
    str,
    typer.Option(
        envvar="O365DKIM_CLOUD",
        rich_help_panel=SIGN_IN,
        help="Microsoft 365 cloud: worldwide, gcc-high or dod.",
    ),
]
DnsProviderName = Annotated[
    str,
    typer.Option(
        "--dns-provider",
        envvar="O365DKIM_DNS_PROVIDER",
        rich_help_panel=DNS,
        help="Where to publish the CNAMEs: manual, rfc2136, powerdns, cloudflare, route53, "
        "azure, lexicon:NAME (any dns-lexicon provider), or an installed provider.",
    ),
]
DnsOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--dns-option",
        rich_help_panel=DNS,
        show_default=False,
        help="Option of the DNS provider as KEY=VALUE, such as api_url=http://ns1:8081; "
        "repeat for each. VALUE may be keyring:NAME. Unset options fall back to "
        "O365DKIM_<PROVIDER>_<KEY>.",
    ),
]
Rfc2136Server = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_RFC2136_SERVER",
        rich_help_panel=DNS,
        help="Primary server that accepts dynamic updates, HOST[:PORT].",
    ),
]
Rfc2136KeyName = Annotated[
    str | None,
    typer.Option(envvar="O365DKIM_RFC2136_KEY_NAME", rich_help_panel=DNS, help="TSIG key name."),
]
Rfc2136KeySecret = Annotated[
    str | None,
    typer.Option(
        envvar="O365DKIM_RFC2136_KEY_SECRET",
        rich_help_panel=DNS,
        show_default=False,
        help="TSIG key secret (base64). Prefer the environment variable.",
    ),
]
Rfc2136KeyAlgorithm = Annotated[
    str,
    typer.Option(
        envvar="O365DKIM_RFC2136_KEY_ALGORITHM", rich_help_panel=DNS, help="TSIG algorithm."
    ),
]
Nameservers = Annotated[
    list[str] | None,
    typer.Option(
        "--nameserver",
        rich_help_panel=DNS,
        help="Authoritative server to check, HOST[:PORT]; repeat for each. Replaces "
        "discovery. Environment: O365DKIM_NAMESERVERS, space-separated.",
    ),
]
Resolvers = Annotated[
    list[str] | None,
    typer.Option(
        "--resolver",
        rich_help_panel=DNS,
        help="Resolver used to find the zone and its name servers, HOST[:PORT]. "
        "Default: the system's. Environment: O365DKIM_RESOLVERS, space-separated.",
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        envvar="O365DKIM_TIMEOUT",
        min=0,
        rich_help_panel=DNS,
        help="Seconds to wait for the CNAMEs and for Exchange to accept them.",
    ),
]
Interval = Annotated[
    float,
    typer.Option(
        envvar="O365DKIM_INTERVAL",
        min=0.1,
        rich_help_panel=DNS,
        help="Seconds between two DNS checks.",
    ),
]
KeySize = Annotated[
    int,
    typer.Option(envvar="O365DKIM_KEY_SIZE", help="RSA key size of a new config: 1024 or 2048."),
]
Replace = Annotated[
    bool,
    typer.Option(
        "--replace",
        rich_help_panel=DNS,
        help="Overwrite a different record found at a selector name.",
    ),
]
Output = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", envvar="O365DKIM_OUTPUT", help="Result format on stdout."),
]
Sandbox = Annotated[
    bool,
    typer.Option(
        "--sandbox",
        rich_help_panel=SANDBOX,
        help="Run against an in-process sandbox tenant and DNS server; needs no account.",
    ),
]
SandboxState = Annotated[
    Path | None,
    typer.Option(
        envvar="O365DKIM_SANDBOX_STATE",
        rich_help_panel=SANDBOX,
        help="JSON file keeping the sandbox state between runs.",
    ),
]
Debug = Annotated[
    bool,
    typer.Option(
        "--debug", envvar="O365DKIM_DEBUG", help="Log every call and show tracebacks on stderr."
    ),
]
NoInput = Annotated[
    bool,
    typer.Option(
        "--no-input",
        envvar="O365DKIM_NO_INPUT",
        help="Never prompt: a step that needs a person fails with exit code 2. "
        "Always on when stdin is not a terminal.",
    ),
]
LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        envvar="O365DKIM_LOG_FORMAT",
        help="Log format on stderr: text, or json for one JSON object per line.",
    ),
]
