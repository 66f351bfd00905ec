"""Run settings, and factories that build the signed-in client, DNS provider and checker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from o365dkim.auth import (
    EXCHANGE_PUBLIC_CLIENT_ID,
    CertificateCredential,
    TokenProvider,
    certificate_provider,
    device_code_provider,
    validate_tenant,
)
from o365dkim.clouds import get_cloud
from o365dkim.dns.propagation import PropagationChecker, parse_server
from o365dkim.dns.provider import DnsProvider, create_provider
from o365dkim.errors import ConfigurationError, InvalidInputError
from o365dkim.exchange.client import ExchangeClient
from o365dkim.exchange.retry import RetryPolicy
from o365dkim.http import create_session

log = logging.getLogger(__name__)

AUTH_MODES = ("certificate", "device-code")


@dataclass
class Settings:
    """Everything a command needs, after options, environment and .env are merged."""

    tenant: str | None = None
    client_id: str | None = None
    #: "certificate" or "device-code"; None picks certificate when a certificate is set.
    auth: str | None = None
    certificate: Path | None = None
    certificate_password: str | None = field(default=None, repr=False)
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
        values = [self.certificate_password or ""]
        values += [value for key, value in self.dns_options.items() if _is_secret_key(key)]
        return [value for value in values if len(value) >= 4]


def _is_secret_key(key: str) -> bool:
    return any(word in key.lower() for word in ("secret", "password", "token", "key_secret"))


def resolve_auth_mode(settings: Settings) -> str:
    """Return the sign-in mode, checking it against the other settings."""
    mode = settings.auth or ("certificate" if settings.certificate else "device-code")
    if mode not in AUTH_MODES:
        raise InvalidInputError(
            f"Invalid sign-in mode '{mode}': choose one of {', '.join(AUTH_MODES)}."
        )
    if mode == "certificate":
        missing = [
            name
            for name, value in (
                ("--tenant (O365DKIM_TENANT)", settings.tenant),
                ("--client-id (O365DKIM_CLIENT_ID)", settings.client_id),
                ("--certificate (O365DKIM_CERTIFICATE)", settings.certificate),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                f"Certificate sign-in needs {', '.join(missing)}.",
                hint="Or use --auth device-code to sign in as a person.",
            )
    return mode


def build_token_provider(settings: Settings, show_code: Callable[[str], None]) -> TokenProvider:
    """Return the MSAL token provider that the settings describe."""
    cloud = get_cloud(settings.cloud)
    authority_host = settings.authority_host or cloud.authority_host
    session = create_session(ca_bundle=settings.ca_bundle)
    tenant = validate_tenant(settings.tenant) if settings.tenant else None

    if resolve_auth_mode(settings) == "certificate":
        assert tenant and settings.client_id and settings.certificate
        credential = CertificateCredential(
            settings.client_id, tenant, settings.certificate, settings.certificate_password
        )
        return certificate_provider(
            credential, authority_host=authority_host, scope=cloud.scope, session=session
        )
    return device_code_provider(
        client_id=settings.client_id or EXCHANGE_PUBLIC_CLIENT_ID,
        tenant=tenant,
        authority_host=authority_host,
        scope=cloud.scope,
        session=session,
        show_code=show_code,
    )


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
