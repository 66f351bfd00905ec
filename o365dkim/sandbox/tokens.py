"""Access and ID tokens of the sandbox: RS256 JWTs signed by a key made per server.

Claims follow Entra ID's v1 access tokens for Exchange Online: ``aud`` is the resource,
``tid`` the tenant, ``roles`` (app-only) or ``scp`` (delegated) the permissions, and ``wids``
the directory role template ids that the admin API checks for admin rights.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

EXCHANGE_RESOURCE = "https://outlook.office365.com"
EXCHANGE_DEFAULT_SCOPE = f"{EXCHANGE_RESOURCE}/.default"
#: The delegated permission that ExchangeOnlineManagement's public client receives.
DELEGATED_PERMISSION = "AdminApi.AccessAsUser.All"
#: The application permission an app needs on Office 365 Exchange Online.
APP_ROLE = "Exchange.ManageAsApp"
#: Directory role template ids (Entra built-in roles) that grant Exchange admin rights.
EXCHANGE_ADMIN_ROLE_ID = "29232cdf-9323-44fd-ade2-c3d9bb8c3ae4"
GLOBAL_ADMIN_ROLE_ID = "62e90394-69f5-4237-9190-012177145e10"
ADMIN_ROLE_IDS = frozenset({EXCHANGE_ADMIN_ROLE_ID, GLOBAL_ADMIN_ROLE_ID})


class TokenRejected(Exception):
    """Raised when a bearer token fails verification. The message gives the reason."""


@dataclass(frozen=True)
class Principal:
    """The app or user a token is issued to."""

    tenant_id: str
    object_id: str
    client_id: str
    #: App roles (app-only tokens) and delegated scopes (user tokens).
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    #: Directory role template ids, sent as the ``wids`` claim.
    directory_roles: tuple[str, ...] = ()
    username: str | None = None

    @property
    def app_only(self) -> bool:
        """True when the token is for an app acting as itself."""
        return self.username is None


class TokenIssuer:
    """Mints and verifies the sandbox's JWTs with one RSA key."""

    def __init__(self, lifetime_seconds: int = 3600) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(16)
        #: Lifetime of access and ID tokens; tests lower it to force renewal.
        self.lifetime_seconds = lifetime_seconds

    def jwks(self) -> dict[str, Any]:
        """Return the JSON Web Key Set that contains the signing key's public half."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.key_id, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def access_token(self, issuer: str, principal: Principal) -> str:
        """Return an access token for the Exchange admin API."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": EXCHANGE_RESOURCE,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "tid": principal.tenant_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "appid": principal.client_id,
            "azp": principal.client_id,
            "idtyp": "app" if principal.app_only else "user",
            "wids": list(principal.directory_roles),
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if principal.app_only:
            claims["roles"] = list(principal.roles)
        else:
            claims["scp"] = " ".join(principal.scopes)
            claims["upn"] = principal.username
            claims["unique_name"] = principal.username
        return self._sign(claims)

    def id_token(self, issuer: str, principal: Principal, nonce: str | None = None) -> str:
        """Return an OpenID Connect ID token for a signed-in user (audience: the client).

        ``nonce`` is the authorization request's nonce, echoed as OpenID Connect requires.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": principal.client_id,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "tid": principal.tenant_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "preferred_username": principal.username,
            "name": principal.username,
            "ver": "2.0",
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return self._sign(claims)

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of an access token, or raise TokenRejected with the reason."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=EXCHANGE_RESOURCE,
                options={"require": ["exp", "aud", "tid"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise TokenRejected("The access token has expired.") from err
        except jwt.InvalidAudienceError as err:
            raise TokenRejected(f"The access token is not for {EXCHANGE_RESOURCE}.") from err
        except jwt.InvalidTokenError as err:
            raise TokenRejected(f"The access token is invalid: {err}.") from err
        return claims

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"}
        )


def client_info(principal: Principal) -> str:
    """Return the ``client_info`` value MSAL uses to key accounts (base64url JSON, unpadded)."""
    data = json.dumps({"uid": principal.object_id, "utid": principal.tenant_id}).encode("utf-8")
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def object_id_for(tenant_id: str, name: str) -> str:
    """Return a stable object id for an app's service principal or a user in a tenant."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id.lower()}/{name.lower()}"))
