"""The device authorization grant (RFC 8628) of the sandbox's Entra endpoints.

A device code counts as approved by the tenant's registered user once
``Faults.device_code_approval_seconds`` have passed since it was issued.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from o365dkim.sandbox.entra_checks import EntraError, check_delegated_scopes, error_response
from o365dkim.sandbox.responses import SandboxResponse, json_response

if TYPE_CHECKING:
    from o365dkim.sandbox.entra import EntraEndpoints

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_DEVICE_CODE_LIFETIME_SECONDS = 900
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass
class DeviceCodeGrant:
    """A device code waiting for approval; times are ``time.monotonic`` seconds."""

    client_id: str
    tenant_id: str | None
    issued_at: float
    expires_at: float
    redeemed: bool = False


class DeviceCodeFlow:
    """The device code endpoint and grant of EntraEndpoints, sharing its registrations."""

    def __init__(self, entra: EntraEndpoints) -> None:
        self._entra = entra
        self._lock = threading.Lock()
        self._device_codes: dict[str, DeviceCodeGrant] = {}

    def authorize(
        self, segment: str, form: Mapping[str, str], correlation_id: str | None
    ) -> SandboxResponse:
        """Handle ``POST /{tenant}/oauth2/v2.0/devicecode``: issue a new device code."""
        client_id = form.get("client_id", "").lower()
        try:
            tenant_id = self._entra._device_code_tenant(segment)
            self._entra._require_public_client(client_id, segment)
            check_delegated_scopes(form.get("scope", ""), segment)
        except EntraError as err:
            return error_response(err, correlation_id, self._entra.base_url)

        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        now = time.monotonic()
        with self._lock:
            self._device_codes[device_code] = DeviceCodeGrant(
                client_id, tenant_id, now, now + _DEVICE_CODE_LIFETIME_SECONDS
            )
        uri = f"{self._entra.base_url}/devicelogin"
        return json_response(
            200,
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": uri,
                "expires_in": _DEVICE_CODE_LIFETIME_SECONDS,
                # One second keeps sandbox sign-in fast; Entra sends 5.
                "interval": 1,
                "message": (
                    f"To sign in, use a web browser to open the page {uri} and enter the code "
                    f"{user_code} to authenticate."
                ),
            },
        )

    def redeem(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        """Redeem an approved device code for tokens (the device code grant)."""
        grant = self._take_approved_device_code(client_id, form.get("device_code", ""))
        tenant = self._entra._device_tenant(grant.tenant_id)
        return self._entra._user_tokens(self._entra._user_principal(tenant, client_id))

    def _take_approved_device_code(self, client_id: str, device_code: str) -> DeviceCodeGrant:
        """Mark an approved device code redeemed and return it, or raise the polling error."""
        now = time.monotonic()
        with self._lock:
            grant = self._device_codes.get(device_code)
            if grant is None or grant.client_id != client_id:
                raise EntraError(
                    400,
                    "invalid_grant",
                    70000,
                    "The provided value for the 'device_code' parameter is not valid.",
                )
            if grant.redeemed:
                raise EntraError(
                    400, "invalid_grant", 54005, "The device code was already redeemed."
                )
            if now > grant.expires_at:
                raise EntraError(
                    400,
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' is not valid. "
                    "This device code has expired.",
                )
            approval = self._entra._faults.device_code_approval_seconds
            if approval is None or now - grant.issued_at < approval:
                raise EntraError(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            grant.redeemed = True
            return grant
