"""The Entra ID side of the sandbox: OpenID discovery, the token endpoint, device codes.

The endpoints handle the requests that MSAL Python 1.39 sends for an authority
``https://127.0.0.1:PORT/<tenant>`` with ``instance_discovery=False``. Grants: client
credentials with a certificate assertion (RFC 7523), device code (RFC 8628) and refresh
token. Errors use Entra's JSON shape with an AADSTS code in ``error_description``; the codes
are the ones Entra uses for the same cause where known.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from o365dkim.sandbox.ca import certificate_thumbprints
from o365dkim.sandbox.entra_checks import (
    OIDC_SCOPES,
    AppRegistration,
    EntraError,
    app_not_found,
    check_app_scope,
    check_delegated_scopes,
    error_response,
    tenant_not_found,
    verify_client_assertion,
)
from o365dkim.sandbox.faults import Faults
from o365dkim.sandbox.responses import SandboxResponse, json_response
from o365dkim.sandbox.tenant import SandboxTenant
from o365dkim.sandbox.tokens import (
    APP_ROLE,
    DELEGATED_PERMISSION,
    EXCHANGE_ADMIN_ROLE_ID,
    EXCHANGE_DEFAULT_SCOPE,
    EXCHANGE_RESOURCE,
    Principal,
    TokenIssuer,
    client_info,
    object_id_for,
)

log = logging.getLogger(__name__)

#: "Microsoft Exchange REST API Based PowerShell", the module's public client, registered
#: in every sandbox tenant as in every real one.
EXCHANGE_PUBLIC_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_MULTI_TENANT_SEGMENTS = frozenset({"organizations", "common"})
_DEVICE_CODE_LIFETIME_SECONDS = 900
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class UserAccount:
    """The person who approves device codes in a tenant."""

    username: str
    has_exchange_role: bool


@dataclass
class DeviceCodeGrant:
    """A device code waiting for approval; times are ``time.monotonic`` seconds."""

    client_id: str
    tenant_id: str | None
    issued_at: float
    expires_at: float
    redeemed: bool = False


class EntraEndpoints:
    """App and user registrations plus the sign-in endpoints, thread-safe."""

    def __init__(
        self, tenants: Mapping[str, SandboxTenant], faults: Faults, issuer: TokenIssuer
    ) -> None:
        self._tenants = tenants
        self._faults = faults
        self._issuer = issuer
        self._lock = threading.Lock()
        self._apps: dict[tuple[str, str], AppRegistration] = {}
        self._public_clients: set[str] = {EXCHANGE_PUBLIC_CLIENT_ID}
        self._users: dict[str, UserAccount] = {}
        self._device_codes: dict[str, DeviceCodeGrant] = {}
        self._refresh_tokens: dict[str, Principal] = {}
        #: The server's address, set when it starts; every URL and issuer is built from it.
        self.base_url = ""
        #: Requests to the token endpoint per client id, successful or not.
        self.token_requests: collections.Counter[str] = collections.Counter()

    # ----- registrations ----------------------------------------------------------------

    def register_app(
        self,
        tenant: SandboxTenant,
        client_id: str,
        cert_pem: bytes,
        roles: tuple[str, ...] = (APP_ROLE,),
        has_exchange_role: bool = True,
    ) -> None:
        """Register an app that signs in with the certificate ``cert_pem``."""
        public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise ValueError("App certificates must hold an RSA key, as Entra ID requires.")
        sha1, sha256 = certificate_thumbprints(cert_pem)
        app = AppRegistration(
            tenant.tenant_id,
            client_id.lower(),
            public_key,
            sha1,
            sha256,
            tuple(roles),
            has_exchange_role,
        )
        with self._lock:
            self._apps[(tenant.tenant_id, client_id.lower())] = app

    def register_public_client(self, client_id: str) -> None:
        """Register a public client (device code sign-in) in every tenant."""
        with self._lock:
            self._public_clients.add(client_id.lower())

    def register_user(self, tenant: SandboxTenant, username: str, has_exchange_role: bool) -> None:
        """Make ``username`` the person who approves device codes in ``tenant``."""
        with self._lock:
            self._users[tenant.tenant_id] = UserAccount(username, has_exchange_role)

    def resolve_tenant(self, segment: str) -> SandboxTenant | None:
        """Return the tenant named in a URL path by GUID or by its initial domain."""
        key = segment.strip().lower()
        for tenant in self._tenants.values():
            if key in (tenant.tenant_id, tenant.initial_domain):
                return tenant
        return None

    # ----- endpoints --------------------------------------------------------------------

    def openid_configuration(self, segment: str) -> SandboxResponse:
        """Return the response to ``GET /{tenant}/v2.0/.well-known/openid-configuration``."""
        if segment.lower() in _MULTI_TENANT_SEGMENTS:
            # Multi-tenant authorities publish a templated issuer, as Entra does.
            return json_response(200, self._oidc_document(segment.lower(), "{tenantid}"))
        tenant = self.resolve_tenant(segment)
        if tenant is None:
            return error_response(tenant_not_found(segment), None, self.base_url)
        return json_response(200, self._oidc_document(tenant.tenant_id, tenant.tenant_id))

    def jwks(self) -> SandboxResponse:
        """Return the signing keys for ``GET /{tenant}/discovery/v2.0/keys``."""
        return json_response(200, self._issuer.jwks())

    def token(
        self, segment: str, form: Mapping[str, str], correlation_id: str | None
    ) -> SandboxResponse:
        """Handle ``POST /{tenant}/oauth2/v2.0/token`` for the three supported grants."""
        client_id = form.get("client_id", "").lower()
        with self._lock:
            self.token_requests[client_id] += 1
        grant = form.get("grant_type", "")
        try:
            if grant == "client_credentials":
                body = self._client_credentials(segment, client_id, form)
            elif grant == DEVICE_CODE_GRANT:
                body = self._redeem_device_code(client_id, form)
            elif grant == "refresh_token":
                body = self._redeem_refresh_token(client_id, form)
            else:
                raise EntraError(
                    400,
                    "unsupported_grant_type",
                    70003,
                    f"The app requested an unsupported grant type '{grant}'.",
                )
        except EntraError as err:
            return error_response(err, correlation_id, self.base_url)
        return json_response(200, body)

    def device_authorization(
        self, segment: str, form: Mapping[str, str], correlation_id: str | None
    ) -> SandboxResponse:
        """Handle ``POST /{tenant}/oauth2/v2.0/devicecode``: issue a new device code."""
        client_id = form.get("client_id", "").lower()
        try:
            tenant_id = self._device_code_tenant(segment)
            self._require_public_client(client_id, segment)
            check_delegated_scopes(form.get("scope", ""), segment)
        except EntraError as err:
            return error_response(err, correlation_id, self.base_url)

        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        now = time.monotonic()
        with self._lock:
            self._device_codes[device_code] = DeviceCodeGrant(
                client_id, tenant_id, now, now + _DEVICE_CODE_LIFETIME_SECONDS
            )
        uri = f"{self.base_url}/devicelogin"
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

    # ----- grants -----------------------------------------------------------------------

    def _client_credentials(
        self, segment: str, client_id: str, form: Mapping[str, str]
    ) -> dict[str, Any]:
        tenant = self._single_tenant(segment)
        with self._lock:
            app = self._apps.get((tenant.tenant_id, client_id))
        if app is None:
            raise app_not_found(client_id, tenant.name)

        # Entra accepts the token endpoint named by tenant GUID or by tenant name.
        audiences = [
            f"{self.base_url}/{name}/oauth2/v2.0/token"
            for name in (tenant.tenant_id, tenant.initial_domain)
        ]
        verify_client_assertion(app, form, audiences)
        check_app_scope(form.get("scope", ""), tenant.name)

        principal = Principal(
            tenant_id=tenant.tenant_id,
            object_id=object_id_for(tenant.tenant_id, f"app:{client_id}"),
            client_id=client_id,
            roles=app.roles,
            directory_roles=(EXCHANGE_ADMIN_ROLE_ID,) if app.has_exchange_role else (),
        )
        log.info("Sandbox sign-in: app %s in tenant %s", client_id, tenant.name)
        lifetime = self._issuer.lifetime_seconds
        access_token = self._issuer.access_token(self._access_issuer(tenant.tenant_id), principal)
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }

    def _redeem_device_code(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        grant = self._take_approved_device_code(client_id, form.get("device_code", ""))
        tenant = self._device_tenant(grant.tenant_id)
        return self._user_tokens(self._user_principal(tenant, client_id))

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
            approval = self._faults.device_code_approval_seconds
            if approval is None or now - grant.issued_at < approval:
                raise EntraError(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            grant.redeemed = True
            return grant

    def _redeem_refresh_token(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        check_delegated_scopes(form.get("scope") or EXCHANGE_DEFAULT_SCOPE, "the tenant")
        with self._lock:
            principal = self._refresh_tokens.pop(form.get("refresh_token", ""), None)
        if principal is None or principal.client_id != client_id:
            raise EntraError(
                400,
                "invalid_grant",
                70000,
                "The provided value for the 'refresh_token' parameter is not valid.",
            )
        return self._user_tokens(principal)

    def _user_tokens(self, principal: Principal) -> dict[str, Any]:
        refresh_token = secrets.token_urlsafe(48)
        with self._lock:
            self._refresh_tokens[refresh_token] = principal
        tenant_id = principal.tenant_id
        lifetime = self._issuer.lifetime_seconds
        log.info("Sandbox sign-in: user %s in tenant %s", principal.username, tenant_id)
        return {
            "token_type": "Bearer",
            # Listing .default next to the permission lets MSAL find the cached token again.
            "scope": f"{EXCHANGE_RESOURCE}/{DELEGATED_PERMISSION} {EXCHANGE_DEFAULT_SCOPE}",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self._issuer.access_token(self._access_issuer(tenant_id), principal),
            "refresh_token": refresh_token,
            "id_token": self._issuer.id_token(f"{self.base_url}/{tenant_id}/v2.0", principal),
            "client_info": client_info(principal),
        }

    # ----- helpers ----------------------------------------------------------------------

    def _user_principal(self, tenant: SandboxTenant, client_id: str) -> Principal:
        with self._lock:
            user = self._users.get(tenant.tenant_id) or UserAccount(
                f"admin@{tenant.initial_domain}", has_exchange_role=True
            )
        return Principal(
            tenant_id=tenant.tenant_id,
            object_id=object_id_for(tenant.tenant_id, f"user:{user.username}"),
            client_id=client_id,
            scopes=(DELEGATED_PERMISSION,),
            directory_roles=(EXCHANGE_ADMIN_ROLE_ID,) if user.has_exchange_role else (),
            username=user.username,
        )

    def _device_code_tenant(self, segment: str) -> str | None:
        if segment.lower() in _MULTI_TENANT_SEGMENTS:
            return None
        return self._single_tenant(segment).tenant_id

    def _single_tenant(self, segment: str) -> SandboxTenant:
        """Return the tenant a URL names, raising for unknown and multi-tenant segments."""
        if segment.lower() in _MULTI_TENANT_SEGMENTS:
            raise EntraError(
                400,
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by "
                "any provided credentials.",
            )
        tenant = self.resolve_tenant(segment)
        if tenant is None:
            raise tenant_not_found(segment)
        return tenant

    def _device_tenant(self, tenant_id: str | None) -> SandboxTenant:
        """Return the tenant of a device code; a multi-tenant code signs in to the first one."""
        if tenant_id is not None and tenant_id in self._tenants:
            return self._tenants[tenant_id]
        return next(iter(self._tenants.values()))

    def _require_public_client(self, client_id: str, segment: str) -> None:
        with self._lock:
            known = client_id in self._public_clients
        if not known:
            raise app_not_found(client_id, segment)

    def _access_issuer(self, tenant_id: str) -> str:
        return f"{self.base_url}/{tenant_id}/"

    def _oidc_document(self, path_tenant: str, issuer_tenant: str) -> dict[str, Any]:
        base = f"{self.base_url}/{path_tenant}"
        return {
            "issuer": f"{self.base_url}/{issuer_tenant}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": sorted(OIDC_SCOPES),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "name"],
            "request_uri_parameter_supported": False,
            "tenant_region_scope": "WW",
        }
