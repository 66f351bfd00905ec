"""Choose and build the sign-in that the settings describe, with its token cache."""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from o365dkim.auth.cache import CACHE_DISABLED, TokenCacheStore, open_token_cache
from o365dkim.auth.confidential import (
    CertificateCredential,
    certificate_provider,
    client_secret_provider,
    federated_provider,
)
from o365dkim.auth.federated import find_token_source
from o365dkim.auth.managed_identity import managed_identity_provider
from o365dkim.auth.public import browser_provider, device_code_provider
from o365dkim.auth.tokens import (
    EXCHANGE_PUBLIC_CLIENT_ID,
    AccessToken,
    MsalTokenProvider,
    decode_claims,
    validate_tenant,
)
from o365dkim.clouds import Cloud, get_cloud
from o365dkim.errors import ConfigurationError, InvalidInputError
from o365dkim.http import create_session

if TYPE_CHECKING:
    from o365dkim.settings import Settings

log = logging.getLogger(__name__)

APP_ONLY_MODES = ("certificate", "client-secret", "federated", "managed-identity")
PERSON_MODES = ("device-code", "browser")
AUTH_MODES = APP_ONLY_MODES + PERSON_MODES

# Settings each mode needs: (Settings attribute, option and variable named in the message).
_TENANT = ("tenant", "--tenant (O365DKIM_TENANT)")
_CLIENT = ("client_id", "--client-id (O365DKIM_CLIENT_ID)")
_REQUIRED = {
    "certificate": (_TENANT, _CLIENT, ("certificate", "--certificate (O365DKIM_CERTIFICATE)")),
    "client-secret": (
        _TENANT,
        _CLIENT,
        ("client_secret", "--client-secret (O365DKIM_CLIENT_SECRET)"),
    ),
    "federated": (_TENANT, _CLIENT),
}


@dataclass(frozen=True)
class SignIn:
    """A token provider and the facts ``whoami`` reports about it."""

    provider: MsalTokenProvider
    mode: str
    cloud: Cloud
    cache: TokenCacheStore

    def describe(self, token: AccessToken) -> dict[str, Any]:
        """Return who is signed in, where and until when, as JSON data (never the token)."""
        claims = decode_claims(token.token)
        expires = datetime.datetime.fromtimestamp(token.expires_on, tz=datetime.timezone.utc)
        permissions = claims.get("roles") if token.app_only else str(claims.get("scp", "")).split()
        return {
            "auth": self.mode,
            "cloud": self.cloud.name,
            "tenant_id": token.tenant_id,
            "kind": "app" if token.app_only else "user",
            "subject": token.subject,
            "permissions": sorted(str(item) for item in permissions or []),
            "expires_on": expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "from_cache": token.from_cache,
            "token_cache": {
                "location": str(self.cache.location) if self.cache.location else None,
                "persistent": self.cache.persistent,
                "encrypted": self.cache.encrypted,
            },
        }


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def resolve_auth_mode(settings: Settings) -> str:
    """Return the sign-in mode, checking that the settings it needs are present.

    Without ``--auth``: certificate when a certificate is set, client-secret when a client
    secret is, federated when a federated token file is, else device-code.
    """
    mode = settings.auth or _default_mode(settings)
    if mode not in AUTH_MODES:
        raise InvalidInputError(
            f"Invalid sign-in mode '{mode}': choose one of {', '.join(AUTH_MODES)}."
        )
    if settings.client_id and not _GUID.match(settings.client_id.strip()):
        raise InvalidInputError(
            f"Invalid client ID '{settings.client_id}': give the application (client) ID, a "
            "GUID such as 00000000-0000-0000-0000-000000000000."
        )
    missing = [label for name, label in _REQUIRED.get(mode, ()) if not getattr(settings, name)]
    if missing:
        raise ConfigurationError(
            f"Sign-in with --auth {mode} needs {', '.join(missing)}.",
            hint="Or use --auth device-code to sign in as a person.",
        )
    return mode


def open_settings_cache(settings: Settings) -> TokenCacheStore:
    """Open the token cache that the settings name.

    Without O365DKIM_TOKEN_CACHE, a run against an authority override (a sandbox tenant,
    whose server and tokens last only as long as its process) keeps tokens in memory, so
    it never fills the user's cache with them.
    """
    location = settings.token_cache
    if location is None and settings.authority_host:
        location = CACHE_DISABLED
    return open_token_cache(location, encryption=settings.token_cache_encryption)


def _default_mode(settings: Settings) -> str:
    if settings.certificate:
        return "certificate"
    if settings.client_secret:
        return "client-secret"
    if settings.federated_token_file:
        return "federated"
    return "device-code"


def open_sign_in(
    settings: Settings, show_message: Callable[[str], None], *, interactive: bool = True
) -> SignIn:
    """Build the token provider for the settings' mode, cloud and token cache.

    ``show_message`` receives what a person must see (the device code, or a sign-in URL
    when no browser opened). With ``interactive=False`` the person modes use only cached
    sign-ins and raise AuthenticationError when there is none.
    """
    mode = resolve_auth_mode(settings)
    cloud = get_cloud(settings.cloud)
    cache = open_settings_cache(settings)
    session = create_session(ca_bundle=settings.ca_bundle)
    builders = {
        "certificate": _certificate,
        "client-secret": _client_secret,
        "federated": _federated,
        "managed-identity": _managed_identity,
        "device-code": _device_code,
        "browser": _browser,
    }
    context = _Context(settings, cloud, cache, session, show_message, interactive)
    provider = builders[mode](context)
    log.debug("Sign-in mode %s, cloud %s, token cache %s", mode, cloud.name, cache.location)
    return SignIn(provider, mode, cloud, cache)


@dataclass(frozen=True)
class _Context:
    settings: Settings
    cloud: Cloud
    cache: TokenCacheStore
    session: requests.Session
    show_message: Callable[[str], None]
    interactive: bool

    @property
    def authority_host(self) -> str:
        return self.settings.authority_host or self.cloud.authority_host

    @property
    def tenant(self) -> str | None:
        return validate_tenant(self.settings.tenant) if self.settings.tenant else None

    def required_tenant(self) -> str:
        tenant = self.tenant
        assert tenant is not None, "resolve_auth_mode checks that app-only modes have a tenant"
        return tenant

    def required_client_id(self) -> str:
        assert self.settings.client_id, "resolve_auth_mode checks the client id"
        return self.settings.client_id


def _certificate(context: _Context) -> MsalTokenProvider:
    settings = context.settings
    assert settings.certificate is not None
    credential = CertificateCredential(
        context.required_client_id(),
        context.required_tenant(),
        settings.certificate,
        settings.certificate_password,
    )
    return certificate_provider(
        credential,
        authority_host=context.authority_host,
        scope=context.cloud.scope,
        session=context.session,
        token_cache=context.cache.cache,
    )


def _client_secret(context: _Context) -> MsalTokenProvider:
    assert context.settings.client_secret is not None
    return client_secret_provider(
        client_id=context.required_client_id(),
        tenant=context.required_tenant(),
        client_secret=context.settings.client_secret,
        authority_host=context.authority_host,
        scope=context.cloud.scope,
        session=context.session,
        token_cache=context.cache.cache,
    )


def _federated(context: _Context) -> MsalTokenProvider:
    source = find_token_source(context.settings.federated_token_file, context.session)
    log.info("Federated sign-in with the token from %s", source.describe())
    return federated_provider(
        client_id=context.required_client_id(),
        tenant=context.required_tenant(),
        assertion=source,
        authority_host=context.authority_host,
        scope=context.cloud.scope,
        session=context.session,
        token_cache=context.cache.cache,
    )


def _managed_identity(context: _Context) -> MsalTokenProvider:
    return managed_identity_provider(
        # The managed identity endpoint takes a resource URI, not a scope.
        resource=context.cloud.scope.removesuffix("/.default"),
        session=context.session,
        client_id=context.settings.managed_identity_client_id,
        token_cache=context.cache.cache,
        # An authority override means a sandbox: never fall back to a real metadata address.
        require_app_service=bool(context.settings.authority_host),
    )


def _device_code(context: _Context) -> MsalTokenProvider:
    return device_code_provider(
        client_id=context.settings.client_id or EXCHANGE_PUBLIC_CLIENT_ID,
        tenant=context.tenant,
        authority_host=context.authority_host,
        scope=context.cloud.scope,
        session=context.session,
        show_code=context.show_message,
        token_cache=context.cache.cache,
        interactive=context.interactive,
    )


def _browser(context: _Context) -> MsalTokenProvider:
    def show_url(url: str) -> None:
        context.show_message(f"No browser opened. To sign in, open this page: {url}")

    return browser_provider(
        client_id=context.settings.client_id or EXCHANGE_PUBLIC_CLIENT_ID,
        tenant=context.tenant,
        authority_host=context.authority_host,
        scope=context.cloud.scope,
        session=context.session,
        show_url=show_url,
        before_browser=lambda: context.show_message("Opening a browser to sign in."),
        token_cache=context.cache.cache,
        interactive=context.interactive,
    )
