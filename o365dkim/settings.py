"""Run settings, and factories that build the signed-in client, DNS provider and checker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from o365dkim.auth import TokenProvider
from o365dkim.auth.factory import AUTH_MODES, open_sign_in, resolve_auth_mode
from o365dkim.clouds import get_cloud
from o365dkim.dns.propagation import PropagationChecker, parse_server
from o365dkim.dns.provider import DnsProvider, create_provider
from o365dkim.exchange.client import ExchangeClient
from o365dkim.exchange.retry import RetryPolicy
from o365dkim.http import create_session

log = logging.getLogger(__name__)

# AUTH_MODES and resolve_auth_mode live with the sign-in code and are kept importable here.
__all__ = [
    "AUTH_MODES",
    "Settings",
    "build_checker",
    "build_dns_provider",
    "build_exchange_client",
    "build_token_provider",
    "resolve_auth_mode",
]


@dataclass
class Settings:
    """Everything a command needs, after options, environment and .env are merged."""

    tenant: str | None = None
    client_id: str | None = None
    #: One of AUTH_MODES; None picks one from the credentials set (see resolve_auth_mode).
    auth: str | None = None
    certificate: Path | None = None
    certificate_password: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    #: Client ID of a user-assigned managed identity; None signs in as the system-assigned one.
    managed_identity_client_id: str | None = None
    #: File holding the federated token (workload identity federation).
    federated_token_file: Path | None = None
    #: Token cache file; None: the user's cache folder; "none": keep tokens in memory only.
    token_cache: str | None = None
    #: "auto", "required" or "off": whether the token cache must be encrypted at rest.
    token_cache_encryption: str = "auto"  # noqa: S105 (a mode name, not a password)
    #: Secret values read from the keyring for ``keyring:NAME`` settings, masked in logs.
    resolved_secrets: list[str] = field(default_factory=list, repr=False)
    cloud: str = "worldwide"
    dns_provider: str = "manual"
    #: String options of the DNS provider, such as {"server": "ns1.contoso.com"}.
    dns_options: dict[str, str] = field(default_factory=dict, repr=False)
    nameservers: list[str] = field(default_factory=list)
    resolvers: list[str] = field(default_factory=list)
    #: Overrides of the sign-in authority, admin API base URL and CA bundle (sandbox, tests).
    authority_host: str | None = None
    api_base: str | None = None
    ca_bundle: str | None = None
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    def secrets(self) -> list[str]:
        """Return the secret values, so logging can mask them wherever they might appear."""
        values = [self.certificate_password or "", self.client_secret or ""]
        values += self.resolved_secrets
        values += [value for key, value in self.dns_options.items() if _is_secret_key(key)]
        return [value for value in values if len(value) >= 4]


def _is_secret_key(key: str) -> bool:
    # DNS provider options: "api_key" (PowerDNS), "api_token" (Cloudflare),
    # "secret_access_key" (Route 53), lexicon's "auth_token", "auth_password"...
    words = ("secret", "password", "token", "api_key", "apikey", "access_key", "auth_key")
    return any(word in key.lower() for word in words)


def build_token_provider(settings: Settings, show_code: Callable[[str], None]) -> TokenProvider:
    """Return the MSAL token provider that the settings describe, with its token cache."""
    return open_sign_in(settings, show_code).provider


def build_exchange_client(settings: Settings, tokens: TokenProvider) -> ExchangeClient:
    """Return an admin API client for the settings' cloud (or the override base URL)."""
    cloud = get_cloud(settings.cloud)
    return ExchangeClient(
        tokens,
        create_session(ca_bundle=settings.ca_bundle),
        api_base=settings.api_base or f"https://{cloud.api_host}",
        retry_policy=settings.retry_policy,
    )


def build_dns_provider(settings: Settings) -> DnsProvider:
    """Return the DNS provider named in the settings, built from its options."""
    return create_provider(settings.dns_provider, settings.dns_options)


def build_checker(settings: Settings) -> PropagationChecker:
    """Return the propagation checker for the given name servers or bootstrap resolvers."""
    nameservers = [parse_server(text) for text in settings.nameservers] or None
    resolvers = [parse_server(text) for text in settings.resolvers] or None
    return PropagationChecker(nameservers=nameservers, resolver=resolvers)
