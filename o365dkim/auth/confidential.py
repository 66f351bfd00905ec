"""App-only sign-in (client credentials): certificate, client secret or federated token."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msal
import requests

from o365dkim.auth.tokens import (
    MsalTokenProvider,
    authority_url,
    call_msal,
    first_line,
    warn_once,
)
from o365dkim.errors import AuthenticationError, ConfigurationError

log = logging.getLogger(__name__)


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
            _check_pfx(path, self.password)
            credential: dict[str, Any] = {"private_key_pfx_path": str(path)}
            if self.password:
                credential["passphrase"] = self.password
            return credential
        return _pem_credential(path, self.password)


_PASSWORD_HINT = "Set O365DKIM_CERTIFICATE_PASSWORD (or --certificate-password) to its password."  # noqa: S105


def _check_pfx(path: Path, password: str | None) -> None:
    """Open the PFX once, so a missing or wrong password is one clear error before sign-in."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, _, _ = pkcs12.load_key_and_certificates(
            path.read_bytes(), password.encode() if password else None
        )
    except (ValueError, TypeError) as err:
        state = "wrong" if password else "missing"
        raise ConfigurationError(
            f"Cannot open the PFX file {path}: the password is {state} or the file is damaged.",
            hint=_PASSWORD_HINT,
        ) from err
    if key is None:
        raise ConfigurationError(f"The PFX file {path} contains no private key.")


def _check_pem_key(path: Path, text: str, password: str | None) -> None:
    """Load the PEM key once, so an encrypted key without its password is one clear error."""
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_pem_private_key(text.encode(), password.encode() if password else None)
    except TypeError as err:
        # cryptography raises TypeError for a missing password and for an unneeded one.
        detail = "is encrypted" if not password else "is not encrypted, but a password was given"
        raise ConfigurationError(
            f"The private key in {path} {detail}.",
            hint=_PASSWORD_HINT if not password else "Unset O365DKIM_CERTIFICATE_PASSWORD.",
        ) from err
    except ValueError as err:
        raise ConfigurationError(
            f"Cannot read the private key in {path}: the password is wrong or the key is damaged.",
            hint=_PASSWORD_HINT,
        ) from err


def _pem_credential(path: Path, password: str | None) -> dict[str, Any]:
    text = path.read_text(encoding="ascii", errors="replace")
    if "PRIVATE KEY-----" not in text or "BEGIN CERTIFICATE-----" not in text:
        raise ConfigurationError(
            f"The PEM file {path} must hold both the private key and the certificate."
        )
    _check_pem_key(path, text, password)
    credential: dict[str, Any] = {"private_key": text, "public_certificate": text}
    if password:
        credential["passphrase"] = password
    return credential


def certificate_provider(
    credential: CertificateCredential,
    *,
    authority_host: str,
    scope: str,
    session: requests.Session,
    token_cache: msal.SerializableTokenCache | None = None,
) -> MsalTokenProvider:
    """Return a provider that signs in as an app with a certificate (client credentials)."""
    return _client_credentials_provider(
        credential.client_id,
        credential.tenant,
        credential.to_msal(),
        authority_host=authority_host,
        scope=scope,
        session=session,
        token_cache=token_cache,
        setup_hint="Check the tenant, the certificate file and its password.",
    )


def client_secret_provider(
    *,
    client_id: str,
    tenant: str,
    client_secret: str,
    authority_host: str,
    scope: str,
    session: requests.Session,
    token_cache: msal.SerializableTokenCache | None = None,
) -> MsalTokenProvider:
    """Return a provider that signs in as an app with a client secret.

    The token endpoint accepts secrets for the Exchange resource, but Microsoft documents
    only certificates for Exchange Online app-only access, so this warns once per process.
    """
    warn_once(
        "client-secret",
        "Signing in with a client secret: Microsoft documents certificates, not client "
        "secrets, for Exchange Online app-only access. Prefer --auth certificate.",
    )
    return _client_credentials_provider(
        client_id,
        tenant,
        client_secret,
        authority_host=authority_host,
        scope=scope,
        session=session,
        token_cache=token_cache,
        setup_hint="Check the tenant and the client ID.",
    )


def federated_provider(
    *,
    client_id: str,
    tenant: str,
    assertion: Callable[[], str],
    authority_host: str,
    scope: str,
    session: requests.Session,
    token_cache: msal.SerializableTokenCache | None = None,
) -> MsalTokenProvider:
    """Return a provider that signs in as an app with a federated token (workload identity).

    MSAL calls ``assertion`` for every token request, so a token file that the platform
    rotates (Kubernetes) or a token that expires in minutes (GitHub Actions) stays fresh.
    """
    return _client_credentials_provider(
        client_id,
        tenant,
        {"client_assertion": assertion},
        authority_host=authority_host,
        scope=scope,
        session=session,
        token_cache=token_cache,
        setup_hint="Check the tenant and the client ID.",
    )


def _client_credentials_provider(
    client_id: str,
    tenant: str,
    client_credential: Any,
    *,
    authority_host: str,
    scope: str,
    session: requests.Session,
    token_cache: msal.SerializableTokenCache | None,
    setup_hint: str,
) -> MsalTokenProvider:
    try:
        app = msal.ConfidentialClientApplication(
            client_id,
            authority=authority_url(authority_host, tenant),
            client_credential=client_credential,
            http_client=session,
            instance_discovery=False,
            token_cache=token_cache,
            timeout=30,
        )
    except ValueError as err:
        raise AuthenticationError(
            f"Sign-in setup failed for tenant {tenant}: {first_line(err)}", hint=setup_hint
        ) from err
    except requests.RequestException as err:
        raise AuthenticationError(
            f"Cannot reach the sign-in service at {authority_host}: {first_line(err)}"
        ) from err

    def acquire(force_refresh: bool) -> dict[str, Any]:
        if force_refresh:
            # acquire_token_for_client returns a cached token while one is valid.
            app.remove_tokens_for_client()
        return call_msal(lambda: app.acquire_token_for_client(scopes=[scope]), authority_host)

    return MsalTokenProvider(acquire, app_only=True)
