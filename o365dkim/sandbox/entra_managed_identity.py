"""The managed identity endpoint of an Azure resource, App Service protocol (2019-08-01).

Azure App Service, Functions and Automation expose a local endpoint named by the
IDENTITY_ENDPOINT variable. A request must send the IDENTITY_HEADER value in the
``X-IDENTITY-HEADER`` header. Query parameters: ``api-version``, ``resource``, and for a
user-assigned identity one of ``client_id``, ``object_id`` or ``mi_res_id``. The sandbox
serves it over HTTPS at ``/msi/token``; the real one is plain HTTP on the host itself.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from o365dkim.sandbox.responses import SandboxResponse, json_response
from o365dkim.sandbox.tokens import (
    APP_ROLE,
    EXCHANGE_ADMIN_ROLE_ID,
    EXCHANGE_RESOURCE,
    Principal,
    TokenIssuer,
    object_id_for,
)

log = logging.getLogger(__name__)

API_VERSION = "2019-08-01"
_SELECTORS = ("client_id", "object_id", "mi_res_id")


@dataclass(frozen=True)
class ManagedIdentity:
    """A system- or user-assigned identity: its service principal and what it may do."""

    tenant_id: str
    client_id: str
    object_id: str
    resource_id: str
    roles: tuple[str, ...] = (APP_ROLE,)
    has_exchange_role: bool = True


class ManagedIdentityEndpoint:
    """The identities assigned to one sandbox Azure resource, and their token endpoint."""

    def __init__(
        self,
        issuer: TokenIssuer,
        access_issuer: Callable[[str], str],
        count_request: Callable[[str], None],
    ) -> None:
        self._issuer = issuer
        self._access_issuer = access_issuer
        self._count_request = count_request
        self._lock = threading.Lock()
        self._system: ManagedIdentity | None = None
        self._user_assigned: list[ManagedIdentity] = []
        #: The value of IDENTITY_HEADER; every request must send it.
        self.identity_header = secrets.token_urlsafe(24)

    def assign(
        self,
        tenant_id: str,
        *,
        user_assigned: bool,
        roles: tuple[str, ...] = (APP_ROLE,),
        has_exchange_role: bool = True,
    ) -> ManagedIdentity:
        """Assign a new identity in ``tenant_id``; a new system-assigned one replaces the old."""
        client_id = str(uuid.uuid4())
        kind = "user" if user_assigned else "system"
        identity = ManagedIdentity(
            tenant_id=tenant_id,
            client_id=client_id,
            object_id=object_id_for(tenant_id, f"mi:{client_id}"),
            resource_id=f"/subscriptions/sandbox/resourceGroups/o365dkim/providers/"
            f"Microsoft.ManagedIdentity/userAssignedIdentities/{kind}-{client_id[:8]}",
            roles=roles,
            has_exchange_role=has_exchange_role,
        )
        with self._lock:
            if user_assigned:
                self._user_assigned.append(identity)
            else:
                self._system = identity
        return identity

    def token(self, query: str, headers: Mapping[str, str]) -> SandboxResponse:
        """Handle ``GET /msi/token``: check the header and parameters, then issue a token."""
        presented = headers.get("x-identity-header", "")
        if not hmac.compare_digest(presented.encode(), self.identity_header.encode()):
            # NOTE: the status App Service returns for a missing or wrong header is not
            # documented; 401 is the sandbox's choice.
            return _error(401, "The X-IDENTITY-HEADER header is missing or does not match.")
        params = {name: values[0] for name, values in parse_qs(query).items()}
        if params.get("api-version") != API_VERSION:
            return _error(400, f"Unsupported api-version; this endpoint serves {API_VERSION}.")
        resource = params.get("resource", "").rstrip("/")
        if resource.lower() != EXCHANGE_RESOURCE:
            return _error(
                400,
                f"AADSTS500011: The resource principal named {resource or '(none)'} was not "
                "found in the tenant.",
            )
        identity = self._select(params)
        if identity is None:
            return _error(400, "No managed identity found for the specified identifier.")

        self._count_request(identity.client_id)
        return json_response(200, self._token_body(identity))

    def _select(self, params: Mapping[str, str]) -> ManagedIdentity | None:
        with self._lock:
            for name in _SELECTORS:
                requested = params.get(name)
                if requested:
                    matching = (i for i in self._user_assigned if _matches(i, name, requested))
                    return next(matching, None)
            return self._system

    def _token_body(self, identity: ManagedIdentity) -> dict[str, str]:
        principal = Principal(
            tenant_id=identity.tenant_id,
            object_id=identity.object_id,
            client_id=identity.client_id,
            roles=identity.roles,
            directory_roles=(EXCHANGE_ADMIN_ROLE_ID,) if identity.has_exchange_role else (),
        )
        token = self._issuer.access_token(self._access_issuer(identity.tenant_id), principal)
        log.info("Sandbox sign-in: managed identity %s", identity.client_id)
        expires_on = int(time.time()) + self._issuer.lifetime_seconds
        # App Service sends expires_on as a string of epoch seconds.
        return {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": EXCHANGE_RESOURCE,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }


def _matches(identity: ManagedIdentity, selector: str, requested: str) -> bool:
    value = {
        "client_id": identity.client_id,
        "object_id": identity.object_id,
        "mi_res_id": identity.resource_id,
    }[selector]
    return value.lower() == requested.lower()


def _error(status: int, message: str) -> SandboxResponse:
    return json_response(status, {"statusCode": status, "message": message})
