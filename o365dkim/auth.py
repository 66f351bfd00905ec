"""Sign-in through MSAL: certificate app-only for automation, device code for people."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests

from o365dkim.errors import AuthenticationError, ConfigurationError, InvalidInputError

log = logging.getLogger(__name__)

#: "Microsoft Exchange REST API Based PowerShell", the public client of the
#: ExchangeOnlineManagement v3 module; tokens it receives carry AdminApi.AccessAsUser.All.
EXCHANGE_PUBLIC_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.onmicrosoft\.(com|us)$", re.I)
_REFRESH_MARGIN = 300  # seconds before expiry at which a token is renewed


@dataclass(frozen=True)
class AccessToken:
    """A bearer token for the admin API and the facts read from it."""

    token: str = field(repr=False)
    tenant_id: str
    expires_on: float
    app_only: bool
    subject: str


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


@dataclass(frozen=True)
class CertificateCredential:
    """App-only sign-in with a certificate: PEM (key and certificate) or PFX with password."""

    client_id: str
    tenant: str
    certificate_path: Path
    password: str | None = field(default=None, repr=False)

    def to_msal(self) -> dict[str, Any]:
        """Return the ``client_credential`` mapping that MSAL expects."""
        path = self.certificate_path
        if not path.is_file():
            raise ConfigurationError(
                f"Certificate file not found: {path}. Give a PEM file holding the private key "
                "and certificate, or a PFX file with --certificate-password."
            )
        if path.suffix.lower() in (".pfx", ".p12"):
            credential: dict[str, Any] = {"private_key_pfx_path": str(path)}
            if self.password:
                credential["passphrase"] = self.password
            return credential
        return _pem_credential(path, self.password)


def _pem_credential(path: Path, password: str | None) -> dict[str, Any]:
    text = path.read_text(encoding="ascii", errors="replace")
    if "PRIVATE KEY-----" not in text or "BEGIN CERTIFICATE-----" not in text:
        raise ConfigurationError(
            f"The PEM file {path} must hold both the private key and the certificate."
        )
    credential: dict[str, Any] = {"private_key": text, "public_certificate": text}
    if password:
        credential["passphrase"] = password
    return credential


class MsalTokenProvider:
    """Token provider over one MSAL application, thread-safe, renewing before expiry."""

    def __init__(
        self,
        acquire: Callable[[], dict[str, Any]],
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
            self._token = _token_from_result(self._acquire(), self._app_only)
            log.info(
                "Signed in to tenant %s (%s), token valid until %s",
                self._token.tenant_id,
                "app-only" if self._app_only else "delegated",
                time.strftime("%H:%M:%S", time.localtime(self._token.expires_on)),
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
    )


def _auth_hint(error: str, description: str) -> str | None:
    if "AADSTS700027" in description or "AADSTS700024" in description:
        return "Check that the certificate uploaded to the app registration matches the key file."
    if "AADSTS7000215" in description or "AADSTS7000222" in description:
        return "Check the client secret or certificate of the app registration."
    if "AADSTS700016" in description or error == "unauthorized_client":
        return "Check the client ID (--client-id) and that the app exists in this tenant."
    if "AADSTS90002" in description or "AADSTS900023" in description:
        return "Check the tenant (--tenant): a GUID or contoso.onmicrosoft.com."
    if error == "expired_token" or "AADSTS70020" in description:
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


def certificate_provider(
    credential: CertificateCredential,
    *,
    authority_host: str,
    scope: str,
    session: requests.Session,
) -> MsalTokenProvider:
    """Return a provider that signs in as an app with a certificate (client credentials)."""
    import msal

    try:
        app = msal.ConfidentialClientApplication(
            credential.client_id,
            authority=_authority_url(authority_host, credential.tenant),
            client_credential=credential.to_msal(),
            http_client=session,
            instance_discovery=False,
            timeout=30,
        )
    except ValueError as err:
        raise AuthenticationError(
            f"Sign-in setup failed for tenant {credential.tenant}: {_first_line(err)}",
            hint="Check the tenant, the certificate file and its password.",
        ) from err
    except requests.RequestException as err:
        raise AuthenticationError(
            f"Cannot reach the sign-in service at {authority_host}: {_first_line(err)}"
        ) from err

    def acquire() -> dict[str, Any]:
        return _call_msal(lambda: app.acquire_token_for_client(scopes=[scope]), authority_host)

    return MsalTokenProvider(acquire, app_only=True)


def device_code_provider(
    *,
    client_id: str,
    tenant: str | None,
    authority_host: str,
    scope: str,
    session: requests.Session,
    show_code: Callable[[str], None],
) -> MsalTokenProvider:
    """Return a provider that signs a person in with the device code flow (MFA-compatible)."""
    import msal

    try:
        app = msal.PublicClientApplication(
            client_id,
            authority=_authority_url(authority_host, tenant or "organizations"),
            http_client=session,
            instance_discovery=False,
            timeout=30,
        )
    except (ValueError, requests.RequestException) as err:
        raise AuthenticationError(
            f"Sign-in setup failed for tenant {tenant or 'organizations'}: {_first_line(err)}"
        ) from err

    def acquire() -> dict[str, Any]:
        accounts = app.get_accounts()
        if accounts:
            cached = app.acquire_token_silent([scope], account=accounts[0])
            if cached and "access_token" in cached:
                return dict(cached)
        flow = _call_msal(lambda: app.initiate_device_flow(scopes=[scope]), authority_host)
        if "user_code" not in flow:
            return flow
        show_code(str(flow["message"]))
        return _call_msal(lambda: app.acquire_token_by_device_flow(flow), authority_host)

    return MsalTokenProvider(acquire, app_only=False)


def _call_msal(call: Callable[[], Any], authority_host: str) -> dict[str, Any]:
    try:
        return dict(call())
    except requests.RequestException as err:
        raise AuthenticationError(
            f"Cannot reach the sign-in service at {authority_host}: {_first_line(err)}"
        ) from err
    except ValueError as err:
        raise AuthenticationError(f"Sign-in failed: {_first_line(err)}") from err


def _authority_url(authority_host: str, tenant: str) -> str:
    base = authority_host if "://" in authority_host else f"https://{authority_host}"
    return f"{base.rstrip('/')}/{tenant}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
