"""The token every sign-in mode returns, the provider that renews it, and shared MSAL helpers."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from o365dkim.errors import AuthenticationError, InvalidInputError

log = logging.getLogger(__name__)

#: "Microsoft Exchange REST API Based PowerShell", the public client of the
#: ExchangeOnlineManagement v3 module; tokens it receives carry AdminApi.AccessAsUser.All.
EXCHANGE_PUBLIC_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.onmicrosoft\.(com|us)$", re.I)
_REFRESH_MARGIN = 300  # seconds before expiry at which a token is renewed

# Keys of the warnings already logged by warn_once in this process.
_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class AccessToken:
    """A bearer token for the admin API and the facts read from it."""

    token: str = field(repr=False)
    tenant_id: str
    expires_on: float
    app_only: bool
    subject: str
    #: True when MSAL returned the token from its cache instead of the sign-in service.
    from_cache: bool = False


class TokenProvider(Protocol):
    """Anything that returns a current token for the admin API."""

    def get_token(self, *, force_refresh: bool = False) -> AccessToken:
        """Return a token valid for at least a few minutes."""
        ...


def validate_tenant(value: str) -> str:
    """Return a tenant given as GUID or ``*.onmicrosoft.com`` name, or raise InvalidInputError."""
    tenant = value.strip().lower()
    if _GUID.match(tenant) or _TENANT_NAME.match(tenant):
        return tenant
    raise InvalidInputError(
        f"Invalid tenant '{value}': give the tenant ID (a GUID) or its initial domain "
        "such as contoso.onmicrosoft.com."
    )


def warn_once(key: str, message: str, *args: object) -> None:
    """Log ``message`` at warning level the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)


class MsalTokenProvider:
    """Token provider over one MSAL application, thread-safe, renewing before expiry.

    ``acquire(force_refresh)`` returns MSAL's result mapping; with ``force_refresh`` it
    must skip cached access tokens.
    """

    def __init__(
        self,
        acquire: Callable[[bool], dict[str, Any]],
        *,
        app_only: bool,
    ) -> None:
        self._acquire = acquire
        self._app_only = app_only
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def get_token(self, *, force_refresh: bool = False) -> AccessToken:
        """Return the cached token, or a new one when forced or close to expiry."""
        with self._lock:
            current = self._token
            if current and not force_refresh and current.expires_on - time.time() > _REFRESH_MARGIN:
                return current
            self._token = _token_from_result(self._acquire(force_refresh), self._app_only)
            log.info(
                "Signed in to tenant %s (%s), token valid until %s%s",
                self._token.tenant_id,
                "app-only" if self._app_only else "delegated",
                time.strftime("%H:%M:%S", time.localtime(self._token.expires_on)),
                " (from the token cache)" if self._token.from_cache else "",
            )
            return self._token


def _token_from_result(result: dict[str, Any], app_only: bool) -> AccessToken:
    if "access_token" not in result:
        error = result.get("error", "unknown_error")
        description = str(result.get("error_description", "")).splitlines()[0:1]
        raise AuthenticationError(
            f"Sign-in failed: {error}: {' '.join(description)}",
            hint=_auth_hint(str(error), " ".join(description)),
        )

    claims = decode_claims(str(result["access_token"]))
    id_claims = result.get("id_token_claims") or {}
    tenant_id = str(claims.get("tid") or id_claims.get("tid") or "")
    if not tenant_id:
        raise AuthenticationError("The access token carries no tenant ID (tid claim).")
    subject = str(
        claims.get("upn")
        or claims.get("preferred_username")
        or claims.get("appid")
        or claims.get("azp")
        or id_claims.get("preferred_username")
        or "unknown"
    )
    expires_in = float(result.get("expires_in", 3600))
    return AccessToken(
        token=str(result["access_token"]),
        tenant_id=tenant_id,
        expires_on=float(claims.get("exp") or time.time() + expires_in),
        app_only=app_only,
        subject=subject,
        from_cache=result.get("token_source") == "cache",
    )


# AADSTS codes in error descriptions, and what to check for each. Codes are matched as
# substrings, so AADSTS70021 also covers AADSTS700211 to AADSTS700213.
_HINTS = (
    (
        ("AADSTS700027",),
        "Check that the certificate uploaded to the app registration matches the key file.",
    ),
    (
        ("AADSTS700024",),
        "The client assertion is outside its valid time range: check the system clock, and "
        "that a federated token is not expired.",
    ),
    (
        ("AADSTS7000215", "AADSTS7000222"),
        "Check the client secret or certificate of the app registration.",
    ),
    (
        ("AADSTS70021",),
        "Check the federated credential of the app registration: its issuer, subject and "
        "audience (api://AzureADTokenExchange) must match the token that the platform issued.",
    ),
    (
        ("AADSTS50011",),
        "Add http://localhost as a redirect URI (Mobile and desktop applications) to the app, "
        "or use --auth device-code.",
    ),
    (
        ("AADSTS90002", "AADSTS900023"),
        "Check the tenant (--tenant): a GUID or contoso.onmicrosoft.com.",
    ),
    (
        ("AADSTS70020",),
        "The device code expired before sign-in finished; run the command again.",
    ),
)


def _auth_hint(error: str, description: str) -> str | None:
    for codes, hint in _HINTS:
        if any(code in description for code in codes):
            return hint
    if "AADSTS700016" in description or error == "unauthorized_client":
        return "Check the client ID (--client-id) and that the app exists in this tenant."
    if error == "expired_token":
        return "The device code expired before sign-in finished; run the command again."
    return None


def decode_claims(token: str) -> dict[str, Any]:
    """Return the claims of a JWT without checking its signature.

    The token is meant for the admin API, not for us; we only read ``tid`` and ``exp``.
    """
    parts = token.split(".")
    if len(parts) < 2:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def call_msal(call: Callable[[], Any], authority_host: str) -> dict[str, Any]:
    """Run one MSAL call and turn its network and input errors into AuthenticationError."""
    try:
        return dict(call())
    except requests.RequestException as err:
        raise AuthenticationError(
            f"Cannot reach the sign-in service at {authority_host}: {first_line(err)}"
        ) from err
    except ValueError as err:
        raise AuthenticationError(f"Sign-in failed: {first_line(err)}") from err


def authority_url(authority_host: str, tenant: str) -> str:
    """Return the MSAL authority URL of ``tenant`` on a host given with or without scheme."""
    base = authority_host if "://" in authority_host else f"https://{authority_host}"
    return f"{base.rstrip('/')}/{tenant}"


def first_line(err: BaseException) -> str:
    """Return the first line of an exception's message, or its type name when empty."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
