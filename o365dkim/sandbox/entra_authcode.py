"""The authorization code flow with PKCE (RFC 6749 section 4.1, RFC 7636) for public clients.

``GET /{tenant}/oauth2/v2.0/authorize`` replaces Entra's sign-in page. The tenant's
registered user signs in at once, and the page returns the code to the app's loopback
redirect URI. With ``response_mode=form_post`` (what MSAL's interactive sign-in asks for)
the response is an HTML form that a browser posts to the redirect URI, as Entra sends it;
otherwise a 302 redirect carries the code in the query. The token endpoint then redeems the
code (grant ``authorization_code``) against the PKCE verifier.

The sandbox requires PKCE with S256 on every request; Entra requires PKCE only for some
client types, but MSAL always sends it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from o365dkim.sandbox.entra_checks import EntraError, check_delegated_scopes
from o365dkim.sandbox.responses import SandboxResponse, text_response

if TYPE_CHECKING:
    from o365dkim.sandbox.entra import EntraEndpoints

log = logging.getLogger(__name__)

_CODE_LIFETIME_SECONDS = 600
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass
class PendingCode:
    """An authorization code waiting to be redeemed; ``expires_at`` is monotonic seconds."""

    client_id: str
    tenant_id: str | None
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    expires_at: float
    redeemed: bool = False


class AuthorizationCodeFlow:
    """The authorization endpoint and the ``authorization_code`` grant of EntraEndpoints.

    It uses the endpoints' tenant, public client and user registrations and their token
    minting, so that a code redeems to the same tokens a device code would.
    """

    def __init__(self, entra: EntraEndpoints) -> None:
        self._entra = entra
        self._lock = threading.Lock()
        self._codes: dict[str, PendingCode] = {}

    def authorize(self, segment: str, query: str) -> SandboxResponse:
        """Handle ``GET /{tenant}/oauth2/v2.0/authorize`` and send the code back."""
        params = {name: values[0] for name, values in parse_qs(query).items()}
        client_id = params.get("client_id", "").lower()
        redirect_uri = params.get("redirect_uri", "")
        try:
            # Per RFC 6749 section 4.1.2.1, a bad client or redirect URI is shown to the
            # user and never sent to the redirect URI.
            tenant_id = self._entra._device_code_tenant(segment)
            self._entra._require_public_client(client_id, segment)
            _check_loopback_redirect(redirect_uri, client_id)
        except EntraError as err:
            return text_response(err.status, f"Sign-in failed: AADSTS{err.code}: {err.description}")

        reply: dict[str, str] = {}
        try:
            _check_code_request(params, segment)
            reply["code"] = self._issue(params, client_id, tenant_id, redirect_uri)
        except EntraError as err:
            reply = {
                "error": err.error,
                "error_description": f"AADSTS{err.code}: {err.description}",
            }
        if params.get("state"):
            reply["state"] = params["state"]
        if params.get("response_mode") == "form_post":
            return _form_post(redirect_uri, reply)
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return SandboxResponse(302, b"", {"Location": redirect_uri + separator + urlencode(reply)})

    def redeem(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        """Redeem a code for tokens (grant ``authorization_code``), checking PKCE."""
        check_delegated_scopes(form.get("scope", ""), "the tenant")
        grant = self._take(form.get("code", ""), client_id)
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise _invalid_grant(
                70000, "The redirect URI does not match the one of the authorization request."
            )
        if not _pkce_matches(form.get("code_verifier", ""), grant.code_challenge):
            raise _invalid_grant(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
        tenant = self._entra._device_tenant(grant.tenant_id)
        principal = self._entra._user_principal(tenant, client_id)
        return self._entra._user_tokens(principal, nonce=grant.nonce)

    def _issue(
        self, params: Mapping[str, str], client_id: str, tenant_id: str | None, redirect_uri: str
    ) -> str:
        code = secrets.token_urlsafe(32)
        pending = PendingCode(
            client_id=client_id,
            tenant_id=tenant_id,
            redirect_uri=redirect_uri,
            code_challenge=params["code_challenge"],
            nonce=params.get("nonce"),
            expires_at=time.monotonic() + _CODE_LIFETIME_SECONDS,
        )
        with self._lock:
            self._codes[code] = pending
        log.info("Sandbox sign-in: authorization code issued to %s", client_id)
        return code

    def _take(self, code: str, client_id: str) -> PendingCode:
        with self._lock:
            grant = self._codes.get(code)
            if grant is None or grant.client_id != client_id:
                raise _invalid_grant(
                    70000, "The provided value for the 'code' parameter is not valid."
                )
            if grant.redeemed:
                raise _invalid_grant(54005, "OAuth2 Authorization code was already redeemed.")
            if time.monotonic() > grant.expires_at:
                raise _invalid_grant(70008, "The provided authorization code has expired.")
            grant.redeemed = True
            return grant


def _check_loopback_redirect(redirect_uri: str, client_id: str) -> None:
    # Public clients register http://localhost; Entra accepts any port on a loopback host.
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or (parts.hostname or "") not in _LOOPBACK_HOSTS:
        raise EntraError(
            400,
            "invalid_request",
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{client_id}'.",
        )


def _check_code_request(params: Mapping[str, str], segment: str) -> None:
    if params.get("response_type") != "code":
        raise EntraError(
            400,
            "unsupported_response_type",
            700054,
            "The response_type must be 'code' for the authorization code flow.",
        )
    if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
        # NOTE: 501491 is Entra's code for a malformed code_challenge; Entra itself does not
        # reject a public client's request without PKCE.
        raise EntraError(
            400,
            "invalid_request",
            501491,
            "The code_challenge parameter is missing or code_challenge_method is not S256; "
            "the sandbox requires PKCE with S256.",
        )
    check_delegated_scopes(params.get("scope", ""), segment)


def _pkce_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    expected = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return bool(verifier) and hmac.compare_digest(expected, challenge)


def _form_post(redirect_uri: str, fields: Mapping[str, str]) -> SandboxResponse:
    """Return the auto-submitting HTML form that response_mode=form_post sends."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}"/>'
        for name, value in fields.items()
    )
    page = (
        "<html><head><title>Working...</title></head><body>"
        f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">{inputs}'
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<input type="submit" value="Submit"/></noscript></form>'
        "<script>window.setTimeout(function(){document.forms[0].submit()}, 0);</script>"
        "</body></html>"
    )
    return SandboxResponse(200, page.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"})


def _invalid_grant(code: int, description: str) -> EntraError:
    return EntraError(400, "invalid_grant", code, description)
