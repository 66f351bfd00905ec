"""Workload identity federation in the sandbox: outside OIDC issuers and their tokens.

An app registration trusts an outside issuer (a Kubernetes cluster, GitHub Actions) through
a federated credential: issuer URL, subject and audience. The app then signs in with the
issuer's JWT as its client assertion. Entra fetches the issuer's keys through OpenID
discovery. The sandbox keeps each issuer's key in memory instead, so an issuer URL here is
only a name and nothing ever connects to it.

``GitHubActionsOidc`` also plays the runner's side: the ID token request endpoint that
ACTIONS_ID_TOKEN_REQUEST_URL names in a job with ``permissions: id-token: write``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from o365dkim.sandbox.entra_checks import AppRegistration, invalid_client
from o365dkim.sandbox.responses import SandboxResponse, json_response

#: The audience Entra ID expects in federated tokens.
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# Clock skew tolerated on federated tokens, as on client assertions.
_LEEWAY_SECONDS = 300


@dataclass(frozen=True)
class FederatedCredential:
    """A federated credential of an app registration: whose tokens the app accepts."""

    issuer: str
    subject: str
    audience: str = FEDERATION_AUDIENCE


class OidcIssuer:
    """An outside identity provider that signs tokens with its own RSA key."""

    def __init__(self, issuer: str, lifetime_seconds: int = 600) -> None:
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds
        self.key_id = secrets.token_hex(8)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The key that verifies this issuer's tokens."""
        return self._key.public_key()

    def issue(
        self,
        subject: str,
        audience: str = FEDERATION_AUDIENCE,
        *,
        lifetime_seconds: int | None = None,
        issued_at: float | None = None,
    ) -> str:
        """Return a signed JWT for ``subject`` and ``audience``, as the platform would."""
        now = int(time.time() if issued_at is None else issued_at)
        lifetime = self.lifetime_seconds if lifetime_seconds is None else lifetime_seconds
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(16),
        }
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"}
        )


def is_federated_assertion(form: Mapping[str, str], client_id: str) -> bool:
    """Return True when the client assertion was issued by someone other than the app.

    An app's own certificate assertion names the app as issuer (RFC 7523 section 3), so
    any other issuer means a federated token. Entra distinguishes the two the same way.
    """
    assertion = form.get("client_assertion", "")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return False
    return str(claims.get("iss", "")).lower() != client_id.lower()


def verify_federated_assertion(
    app: AppRegistration, assertion: str, issuers: Mapping[str, OidcIssuer]
) -> None:
    """Check a federated token against the app's federated credentials.

    Order as Entra reports it: issuer, then signature and time, then audience, then subject.
    """
    # NOTE: 700211, 700212 and 700213 are the codes Entra returns for a wrong issuer,
    # audience and subject as far as known; 50013 is its general assertion signature code.
    unverified = jwt.decode(assertion, options={"verify_signature": False})
    issuer_url = str(unverified.get("iss", ""))
    matching = [c for c in app.federated_credentials if c.issuer == issuer_url]
    issuer = issuers.get(issuer_url)
    if not matching or issuer is None:
        raise invalid_client(
            700211,
            "No matching federated identity record found for presented assertion issuer "
            f"'{issuer_url}'.",
        )

    claims = _decode(assertion, issuer, sorted({c.audience for c in matching}))
    subject = str(claims.get("sub", ""))
    if not any(c.subject == subject for c in matching):
        raise invalid_client(
            700213,
            "No matching federated identity record found for presented assertion subject "
            f"'{subject}'. Check your federated identity credential Subject, Audience and "
            "Issuer against the presented assertion.",
        )


def _decode(assertion: str, issuer: OidcIssuer, audiences: list[str]) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            issuer.public_key,
            algorithms=["RS256"],
            audience=audiences,
            issuer=issuer.issuer,
            options={"require": ["exp", "iss", "sub", "aud"]},
            leeway=_LEEWAY_SECONDS,
        )
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as err:
        raise invalid_client(
            700024, "Client assertion is not within its valid time range."
        ) from err
    except jwt.InvalidAudienceError as err:
        raise invalid_client(
            700212,
            "No matching federated identity record found for presented assertion audience. "
            f"Expected one of {audiences}.",
        ) from err
    except jwt.InvalidTokenError as err:
        raise invalid_client(50013, f"Assertion failed signature validation. {err}") from err
    return claims


class GitHubActionsOidc:
    """GitHub Actions' OIDC provider and the runner's ID token request endpoint."""

    def __init__(self, subject: str) -> None:
        self.issuer = OidcIssuer(GITHUB_ISSUER, lifetime_seconds=300)
        #: The ``sub`` claim of every token, such as repo:contoso/dns:ref:refs/heads/main.
        self.subject = subject
        #: The value of ACTIONS_ID_TOKEN_REQUEST_TOKEN; requests must send it as bearer.
        self.request_token = secrets.token_urlsafe(32)
        self.requests = 0

    def id_token(self, query: str, headers: Mapping[str, str]) -> SandboxResponse:
        """Handle ``GET /github-actions/idtoken?audience=...`` with the request token."""
        authorization = headers.get("authorization", "")
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.encode("utf-8"), self.request_token.encode("utf-8")
        ):
            return json_response(401, {"message": "Bad credentials"})
        audience = parse_qs(query).get("audience", [""])[0] or "https://github.com/sandbox"
        self.requests += 1
        token = self.issuer.issue(self.subject, audience)
        return json_response(200, {"count": len(token), "value": token})
