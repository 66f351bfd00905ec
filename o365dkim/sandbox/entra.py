"""The Entra ID side of the sandbox: OpenID discovery, the token endpoint, device codes.

The endpoints handle the requests that MSAL Python 1.39 sends for an authority
``https://127.0.0.1:PORT/<tenant>`` with ``instance_discovery=False``. Grants: client
credentials with a certificate assertion (RFC 7523), a client secret or a federated token,
device code (RFC 8628), authorization code with PKCE (entra_authcode.py) and refresh
token. The device code and authorization code flows are in entra_device.py and
entra_authcode.py, the managed identity endpoint in entra_managed_identity.py. Errors use
Entra's JSON shape with an AADSTS code in ``error_description``; the codes are the ones
Entra uses for the same cause where known.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from o365dkim.sandbox.ca import certificate_thumbprints
from o365dkim.sandbox.entra_authcode import AuthorizationCodeFlow
from o365dkim.sandbox.entra_checks import (
    OIDC_SCOPES,
    AppRegistration,
    EntraError,
    app_not_found,
    check_app_scope,
    check_delegated_scopes,
    error_response,
    secret_digest,
    tenant_not_found,
    verify_client_assertion,
    verify_client_secret,
)
from o365dkim.sandbox.entra_device import DEVICE_CODE_GRANT, DeviceCodeFlow
from o365dkim.sandbox.entra_federation import (
    FederatedCredential,
    OidcIssuer,
    is_federated_assertion,
    verify_federated_assertion,
)
from o365dkim.sandbox.entra_managed_identity import ManagedIdentityEndpoint
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
_MULTI_TENANT_SEGMENTS = frozenset({"organizations", "common"})


@dataclass(frozen=True)
class UserAccount:
    """The person who approves device codes in a tenant."""

    username: str
    has_exchange_role: bool


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
        self._refresh_tokens: dict[str, Principal] = {}
        #: The server's address, set when it starts; every URL and issuer is built from it.
        self.base_url = ""
        #: Requests to the token endpoint per client id, successful or not; managed
        #: identity token requests count under the identity's client id.
        self.token_requests: collections.Counter[str] = collections.Counter()
        self._oidc_issuers: dict[str, OidcIssuer] = {}
        self.authorization_codes = AuthorizationCodeFlow(self)
        self.device_codes = DeviceCodeFlow(self)
        self.managed_identity = ManagedIdentityEndpoint(
            issuer, self._access_issuer, self._count_token_request
        )

    # ----- registrations ----------------------------------------------------------------

    def register_app(
        self,
        tenant: SandboxTenant,
        client_id: str,
        cert_pem: bytes | None,
        roles: tuple[str, ...] = (APP_ROLE,),
        has_exchange_role: bool = True,
    ) -> None:
        """Register an app that signs in with the certificate ``cert_pem``, or None for none."""
        public_key: rsa.RSAPublicKey | None = None
        sha1 = sha256 = b""
        if cert_pem is not None:
            loaded = x509.load_pem_x509_certificate(cert_pem).public_key()
            if not isinstance(loaded, rsa.RSAPublicKey):
                raise ValueError("App certificates must hold an RSA key, as Entra ID requires.")
            public_key = loaded
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

    def add_client_secret(self, tenant: SandboxTenant, client_id: str, secret: str) -> None:
        """Add a client secret to a registered app."""
        self._update_app(tenant, client_id, secret_digests=(secret_digest(secret),))

    def add_federated_credential(
        self, tenant: SandboxTenant, client_id: str, credential: FederatedCredential
    ) -> None:
        """Add a federated credential to a registered app."""
        self._update_app(tenant, client_id, federated_credentials=(credential,))

    def add_oidc_issuer(self, issuer: OidcIssuer) -> None:
        """Trust ``issuer``'s key for federated tokens that name it in ``iss``."""
        with self._lock:
            self._oidc_issuers[issuer.issuer] = issuer

    def _update_app(self, tenant: SandboxTenant, client_id: str, **added: Any) -> None:
        key = (tenant.tenant_id, client_id.lower())
        with self._lock:
            app = self._apps.get(key)
            if app is None:
                raise KeyError(f"No app {client_id} in tenant {tenant.name}; register it first.")
            changes = {name: getattr(app, name) + value for name, value in added.items()}
            self._apps[key] = dataclasses.replace(app, **changes)

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
        """Handle ``POST /{tenant}/oauth2/v2.0/token`` for the supported grants."""
        client_id = form.get("client_id", "").lower()
        self._count_token_request(client_id)
        grant = form.get("grant_type", "")
        try:
            if grant == "client_credentials":
                body = self._client_credentials(segment, client_id, form)
            elif grant == DEVICE_CODE_GRANT:
                body = self.device_codes.redeem(client_id, form)
            elif grant == "refresh_token":
                body = self._redeem_refresh_token(client_id, form)
            elif grant == "authorization_code":
                body = self.authorization_codes.redeem(client_id, form)
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
        return self.device_codes.authorize(segment, form, correlation_id)

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
        self._verify_app_credential(app, form, audiences)
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

    def _verify_app_credential(
        self, app: AppRegistration, form: Mapping[str, str], audiences: list[str]
    ) -> None:
        if form.get("client_secret"):
            verify_client_secret(app, form["client_secret"])
        elif is_federated_assertion(form, app.client_id):
            with self._lock:
                issuers = dict(self._oidc_issuers)
            verify_federated_assertion(app, form.get("client_assertion", ""), issuers)
        else:
            verify_client_assertion(app, form, audiences)

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

    def _user_tokens(self, principal: Principal, nonce: str | None = None) -> dict[str, Any]:
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
            "id_token": self._issuer.id_token(
                f"{self.base_url}/{tenant_id}/v2.0", principal, nonce=nonce
            ),
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

    def _count_token_request(self, client_id: str) -> None:
        with self._lock:
            self.token_requests[client_id.lower()] += 1

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
