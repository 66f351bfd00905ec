"""Entra ID's token endpoint errors, their JSON body, and the request checks that raise them.

Checks: the client assertion of an app (RFC 7523: certificate named by ``x5t#S256`` or
``x5t``, signature, audience, issuer, subject, time range), its client secret, and the
requested scopes. Each failure carries the AADSTS code Entra uses for the same cause where
it is known.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from o365dkim.sandbox.responses import SandboxResponse, json_response
from o365dkim.sandbox.tokens import DELEGATED_PERMISSION, EXCHANGE_RESOURCE

if TYPE_CHECKING:
    from o365dkim.sandbox.entra_federation import FederatedCredential

log = logging.getLogger(__name__)

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
# Clock skew tolerated on client assertions (Entra allows about five minutes).
_ASSERTION_LEEWAY_SECONDS = 300


class EntraError(Exception):
    """A token endpoint failure: HTTP status, OAuth error, AADSTS number and description."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


@dataclass(frozen=True)
class AppRegistration:
    """An app with its credentials, its app roles and whether it is an Exchange admin.

    Credentials: at most one certificate (``public_key`` and its thumbprints), client
    secrets (stored as SHA-256 digests) and federated credentials.
    """

    tenant_id: str
    client_id: str
    public_key: rsa.RSAPublicKey | None
    sha1_thumbprint: bytes
    sha256_thumbprint: bytes
    roles: tuple[str, ...]
    has_exchange_role: bool
    secret_digests: tuple[bytes, ...] = ()
    federated_credentials: tuple[FederatedCredential, ...] = ()


def error_response(err: EntraError, correlation_id: str | None, base_url: str) -> SandboxResponse:
    """Return Entra's JSON error body for ``err``, echoing the client's correlation id."""
    trace_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    if err.error == "authorization_pending":
        log.debug("Sandbox sign-in: device code not approved yet")
    else:
        log.info("Sandbox sign-in failed: %s AADSTS%d", err.error, err.code)
    body = {
        "error": err.error,
        "error_description": (
            f"AADSTS{err.code}: {err.description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation} Timestamp: {stamp}"
        ),
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
        "error_uri": f"{base_url}/error?code={err.code}",
    }
    return json_response(err.status, body)


def verify_client_assertion(
    app: AppRegistration, form: Mapping[str, str], audiences: list[str]
) -> None:
    """Check an app's client assertion as Entra does: certificate, signature, then claims.

    ``audiences`` are the token endpoint URLs the assertion may name in ``aud``.
    """
    assertion = form.get("client_assertion", "")
    if form.get("client_assertion_type") != JWT_BEARER_ASSERTION or not assertion:
        raise _invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError as err:
        raise _malformed_assertion(str(err)) from err
    if app.public_key is None or not _thumbprint_matches(header, app):
        raise _invalid_client(
            700027,
            "Client assertion failed signature validation. [Reason - The key was not found.] "
            "The certificate named by x5t or x5t#S256 is not registered on the application "
            f"'{app.client_id}'.",
        )

    claims = _decode_assertion(assertion, app.public_key, audiences)
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise _invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. "
            "Both iss and sub must be the client id.",
        )


def secret_digest(secret: str) -> bytes:
    """Return the digest under which a client secret is stored."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def verify_client_secret(app: AppRegistration, secret: str) -> None:
    """Check a client secret sent in the request body (client_secret_post)."""
    digest = secret_digest(secret)
    if not any(hmac.compare_digest(digest, known) for known in app.secret_digests):
        raise _invalid_client(
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'.",
        )


def check_app_scope(raw: str, tenant_name: str) -> None:
    """Accept exactly the Exchange ``/.default`` scope, as the client credentials grant needs."""
    scopes = raw.split()
    if not scopes:
        raise _scope_missing()
    for scope in scopes:
        _check_exchange_resource(scope, tenant_name)
        if not scope.endswith("/.default"):
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
    if len(scopes) != 1:
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid: {raw}. Client "
            "credential flows accept one /.default scope.",
        )


def check_delegated_scopes(raw: str, tenant_name: str) -> None:
    """Accept OpenID scopes plus the Exchange ``/.default`` or AdminApi permission."""
    resource_scopes = [scope for scope in raw.split() if scope not in OIDC_SCOPES]
    if not resource_scopes:
        raise _scope_missing()
    for scope in resource_scopes:
        _check_exchange_resource(scope, tenant_name)
        permission = scope.rpartition("/")[2]
        if permission not in (".default", DELEGATED_PERMISSION):
            raise EntraError(
                400,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid. The scope "
                f"{scope} does not exist.",
            )


def tenant_not_found(segment: str) -> EntraError:
    """Return the error for a tenant GUID or name that the directory does not have."""
    return EntraError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud.",
    )


def app_not_found(client_id: str, directory: str) -> EntraError:
    """Return the error for a client id that is not registered in the directory."""
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{directory}'. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant.",
    )


def _decode_assertion(
    assertion: str, public_key: rsa.RSAPublicKey, audiences: list[str]
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            public_key,
            algorithms=["PS256", "RS256"],
            audience=audiences,
            options={"require": ["exp", "aud", "iss", "sub"]},
            leeway=_ASSERTION_LEEWAY_SECONDS,
        )
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as err:
        raise _invalid_client(
            700024, "Client assertion is not within its valid time range."
        ) from err
    except jwt.InvalidSignatureError as err:
        raise _invalid_client(
            700027,
            "Client assertion contains an invalid signature. [Reason - The signature does not "
            "verify with the registered certificate's key.]",
        ) from err
    except jwt.InvalidAudienceError as err:
        # NOTE: the AADSTS code for a wrong audience is not confirmed; 50027 is Entra's
        # general code for an invalid JWT.
        raise _malformed_assertion(f"The audience must be one of {audiences}.") from err
    except jwt.InvalidTokenError as err:
        raise _malformed_assertion(str(err)) from err
    return claims


def _check_exchange_resource(scope: str, tenant_name: str) -> None:
    # The sandbox directory contains only Office 365 Exchange Online, so any other resource
    # (Microsoft Graph included) is as unknown as a misspelt one is to Entra.
    resource = scope.rpartition("/")[0]
    if resource.lower() != EXCHANGE_RESOURCE:
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource or scope} was not found in the tenant "
            f"named {tenant_name}. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in the tenant.",
        )


def _thumbprint_matches(header: Mapping[str, Any], app: AppRegistration) -> bool:
    expected = {"x5t#S256": app.sha256_thumbprint, "x5t": app.sha1_thumbprint}
    present = [name for name in expected if header.get(name)]
    if not present:
        return False
    return all(_b64url_decode(str(header[name])) == expected[name] for name in present)


def _b64url_decode(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        return b""


def invalid_client(code: int, description: str) -> EntraError:
    """Return an ``invalid_client`` error (HTTP 401) with an AADSTS code."""
    return _invalid_client(code, description)


def _invalid_client(code: int, description: str) -> EntraError:
    return EntraError(401, "invalid_client", code, description)


def _malformed_assertion(reason: str) -> EntraError:
    return _invalid_client(50027, f"JWT token is invalid or malformed. {reason}")


def _scope_missing() -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'scope'.",
    )
