"""The sandbox HTTPS server: Entra ID sign-in and the Exchange admin API on 127.0.0.1.

Routes (``{tenant}`` is a tenant GUID or its ``*.onmicrosoft.com`` name):

- ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` and ``/{tenant}/discovery/v2.0/keys``
- ``POST /{tenant}/oauth2/v2.0/token`` and ``/{tenant}/oauth2/v2.0/devicecode``
- ``GET  /{tenant}/oauth2/v2.0/authorize`` (the sign-in page of the authorization code flow)
- ``GET  /msi/token``: the managed identity endpoint (IDENTITY_ENDPOINT, App Service protocol)
- ``GET  /github-actions/idtoken``: GitHub Actions' ID token request (after
  ``enable_github_actions``)
- ``POST /adminapi/beta/{tenant GUID}/InvokeCommand``

Usage::

    ca = EphemeralCA()
    tenant = SandboxTenant("contoso.onmicrosoft.com", tenant_id_for("contoso"), ["contoso.com"])
    with SandboxServer(ca, [tenant]) as server:
        server.register_app(tenant.tenant_id, client_id, cert_pem)
        ...  # MSAL authority: server.authority(tenant.tenant_id); API base: server.base_url
"""

from __future__ import annotations

import collections
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from o365dkim.sandbox.admin_api import AdminApiGateway
from o365dkim.sandbox.ca import EphemeralCA
from o365dkim.sandbox.entra import EntraEndpoints
from o365dkim.sandbox.entra_federation import FederatedCredential, GitHubActionsOidc, OidcIssuer
from o365dkim.sandbox.entra_managed_identity import ManagedIdentity
from o365dkim.sandbox.faults import Faults
from o365dkim.sandbox.responses import SandboxResponse, json_response, text_response
from o365dkim.sandbox.tenant import SandboxTenant
from o365dkim.sandbox.tokens import APP_ROLE, TokenIssuer

log = logging.getLogger(__name__)

_LISTEN_ADDRESS = "127.0.0.1"
_MAX_BODY_BYTES = 1024 * 1024
# Seconds a connection may sit idle (TLS handshake or keep-alive) before its thread ends.
_CONNECTION_TIMEOUT = 30.0


class SandboxServer:
    """An HTTPS server holding sandbox tenants, their app registrations and fault settings."""

    def __init__(
        self,
        ca: EphemeralCA,
        tenants: Iterable[SandboxTenant],
        faults: Faults | None = None,
        *,
        token_lifetime_seconds: int = 3600,
    ) -> None:
        self.ca = ca
        self._tenants: dict[str, SandboxTenant] = {t.tenant_id: t for t in tenants}
        #: Faults for every tenant; see faults_for for one tenant's own.
        self.faults = faults or Faults()
        self.tokens = TokenIssuer(token_lifetime_seconds)
        self.entra = EntraEndpoints(self._tenants, self.faults, self.tokens)
        self.admin_api = AdminApiGateway(self._tenants, self.faults, self.tokens)
        self._httpd: _TlsHttpServer | None = None
        self._thread: threading.Thread | None = None
        #: GitHub Actions' OIDC provider, once enable_github_actions has run.
        self.github_actions: GitHubActionsOidc | None = None

    # ----- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve requests in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("The sandbox server is already running.")
        httpd = _TlsHttpServer(self, self.ca.server_ssl_context())
        self._httpd = httpd
        self.entra.base_url = self.admin_api.base_url = self.base_url
        # A short poll interval keeps stop() quick; shutdown waits for the next poll.
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="o365dkim-sandbox",
            daemon=True,
        )
        self._thread.start()
        log.info("Sandbox server listening on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving and close the listening socket; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("Sandbox server stopped")

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT``, the sign-in authority host and the admin API base."""
        if self._httpd is None:
            raise RuntimeError("The sandbox server is not running; call start() first.")
        return f"https://{_LISTEN_ADDRESS}:{self._httpd.server_address[1]}"

    # ----- tenants, registrations and faults --------------------------------------------

    @property
    def tenants(self) -> list[SandboxTenant]:
        """The tenants on this server."""
        return list(self._tenants.values())

    def tenant(self, tenant: str) -> SandboxTenant:
        """Return a tenant by GUID or initial domain, or raise KeyError."""
        found = self.entra.resolve_tenant(tenant)
        if found is None:
            raise KeyError(f"The sandbox server has no tenant {tenant!r}.")
        return found

    def authority(self, tenant: str) -> str:
        """Return the MSAL authority URL for ``tenant`` (GUID, name or ``organizations``)."""
        return f"{self.base_url}/{tenant}"

    def admin_api_url(self, tenant_id: str) -> str:
        """Return the InvokeCommand URL of a tenant."""
        return f"{self.base_url}/adminapi/beta/{tenant_id}/InvokeCommand"

    def register_app(
        self,
        tenant_id: str,
        client_id: str,
        cert_pem: bytes | None,
        roles: Iterable[str] = (APP_ROLE,),
        has_exchange_role: bool = True,
    ) -> None:
        """Register an app that signs in with ``cert_pem`` (None: no certificate) in one tenant.

        ``roles`` are its app roles on Exchange Online. ``has_exchange_role`` sets whether its
        service principal has the Exchange Administrator directory role. Without either,
        the admin API returns 403.
        """
        self.entra.register_app(
            self.tenant(tenant_id), client_id, cert_pem, tuple(roles), has_exchange_role
        )

    def add_client_secret(self, tenant_id: str, client_id: str, secret: str) -> None:
        """Add a client secret to a registered app."""
        self.entra.add_client_secret(self.tenant(tenant_id), client_id, secret)

    def add_federated_credential(
        self, tenant_id: str, client_id: str, issuer: OidcIssuer, subject: str
    ) -> None:
        """Let a registered app sign in with ``issuer``'s tokens for ``subject``."""
        self.entra.add_oidc_issuer(issuer)
        credential = FederatedCredential(issuer.issuer, subject)
        self.entra.add_federated_credential(self.tenant(tenant_id), client_id, credential)

    def enable_github_actions(self, subject: str) -> GitHubActionsOidc:
        """Start GitHub Actions' ID token endpoint; its tokens carry ``subject`` as ``sub``."""
        self.github_actions = GitHubActionsOidc(subject)
        self.entra.add_oidc_issuer(self.github_actions.issuer)
        return self.github_actions

    def github_request_url(self) -> str:
        """Return the ACTIONS_ID_TOKEN_REQUEST_URL value for this server."""
        return f"{self.base_url}/github-actions/idtoken?api-version=2.0"

    def assign_managed_identity(
        self,
        tenant_id: str,
        *,
        user_assigned: bool = False,
        roles: Iterable[str] = (APP_ROLE,),
        has_exchange_role: bool = True,
    ) -> ManagedIdentity:
        """Give the sandbox's Azure resource a system- or user-assigned managed identity."""
        return self.entra.managed_identity.assign(
            self.tenant(tenant_id).tenant_id,
            user_assigned=user_assigned,
            roles=tuple(roles),
            has_exchange_role=has_exchange_role,
        )

    def managed_identity_environment(self) -> dict[str, str]:
        """Return IDENTITY_ENDPOINT and IDENTITY_HEADER as App Service sets them."""
        return {
            "IDENTITY_ENDPOINT": f"{self.base_url}/msi/token",
            "IDENTITY_HEADER": self.entra.managed_identity.identity_header,
        }

    def register_public_client(self, client_id: str) -> None:
        """Register a public client for device code sign-in (the module's id always is)."""
        self.entra.register_public_client(client_id)

    def register_user(self, tenant_id: str, username: str, has_exchange_role: bool = True) -> None:
        """Set who approves device codes in a tenant (default admin@<initial domain>, an admin)."""
        self.entra.register_user(self.tenant(tenant_id), username, has_exchange_role)

    def faults_for(self, tenant_id: str) -> Faults:
        """Return the faults that apply only to one tenant, taken before the global ones."""
        return self.admin_api.faults_for(self.tenant(tenant_id).tenant_id)

    @property
    def token_requests(self) -> collections.Counter[str]:
        """Requests to the token endpoint per (lower-case) client id."""
        return self.entra.token_requests

    # ----- routing ----------------------------------------------------------------------

    def route(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> SandboxResponse:
        """Return the response for one request; ``headers`` has lower-case names."""
        url = urlsplit(target)
        segments = [segment for segment in url.path.split("/") if segment]
        response = None
        if method == "GET":
            response = self._route_get(segments, url.query, headers)
        elif method == "POST":
            response = self._route_post(segments, url.query, headers, body)
        if response is not None:
            return response
        return json_response(
            404,
            {
                "error": {
                    "code": "NotFound",
                    "message": f"No sandbox endpoint at {method} {url.path}.",
                }
            },
        )

    def _route_get(
        self, segments: list[str], query: str, headers: Mapping[str, str]
    ) -> SandboxResponse | None:
        if len(segments) == 4:
            if segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                return self.entra.openid_configuration(segments[0])
            if segments[1:] == ["discovery", "v2.0", "keys"]:
                return self.entra.jwks()
            if segments[1:] == ["oauth2", "v2.0", "authorize"]:
                return self.entra.authorization_codes.authorize(segments[0], query)
        if segments == ["devicelogin"]:
            return text_response(200, "Sandbox device login: codes are approved automatically.")
        if segments == ["msi", "token"]:
            return self.entra.managed_identity.token(query, headers)
        if segments == ["github-actions", "idtoken"] and self.github_actions is not None:
            return self.github_actions.id_token(query, headers)
        return None

    def _route_post(
        self, segments: list[str], query: str, headers: Mapping[str, str], body: bytes
    ) -> SandboxResponse | None:
        correlation_id = headers.get("client-request-id")
        if len(segments) == 4 and segments[1:3] == ["oauth2", "v2.0"]:
            form = _parse_form(body)
            if segments[3] == "token":
                return self.entra.token(segments[0], form, correlation_id)
            if segments[3] == "devicecode":
                return self.entra.device_authorization(segments[0], form, correlation_id)
        if (
            len(segments) == 4
            and segments[:2] == ["adminapi", "beta"]
            and segments[3].lower() == "invokecommand"
        ):
            return self.admin_api.invoke_command(segments[2], query, headers, body)
        return None


class _TlsHttpServer(ThreadingHTTPServer):
    """A threading HTTP server that wraps each accepted connection in TLS."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, sandbox: SandboxServer, context: ssl.SSLContext) -> None:
        self.sandbox = sandbox
        self._context = context
        super().__init__((_LISTEN_ADDRESS, 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host name of the address with getfqdn, a
        # resolver query the sandbox must not make; the address itself is name enough.
        socketserver.TCPServer.server_bind(self)
        self.server_name = _LISTEN_ADDRESS
        self.server_port = int(self.server_address[1])

    def get_request(self) -> tuple[Any, Any]:
        # The handshake runs later in the connection's own thread, so the accept loop does
        # not wait for a slow or failing client.
        connection, address = self.socket.accept()
        wrapped = self._context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_CONNECTION_TIMEOUT)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as err:
            log.debug("Sandbox TLS handshake with %s failed: %s", client_address, err)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("Sandbox connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsHttpServer
    timeout = _CONNECTION_TIMEOUT
    # Nagle is off and headers and body leave in one buffered write, because separate small
    # writes meet the client's delayed ACK and add tens of milliseconds to every call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._send(text_response(400, "The Content-Length header is not a number."))
            return
        if length > _MAX_BODY_BYTES:
            self.close_connection = True
            self._send(
                text_response(413, f"Request bodies are limited to {_MAX_BODY_BYTES} bytes.")
            )
            return
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            response = self.server.sandbox.route(method, self.path, headers, body)
        except Exception as err:
            # A bug in the sandbox or in a tenant hook becomes a 500 that names the error,
            # so the client neither hangs nor depends on the server log to see it.
            log.exception("Sandbox server failed on %s %s", method, self.path)
            response = text_response(500, f"The sandbox server failed: {type(err).__name__}: {err}")
        self._send(response)

    def _send(self, response: SandboxResponse) -> None:
        if response.drop:
            # Close without writing anything, as a connection reset by the service looks.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("Sandbox HTTP %s: " + format, self.client_address[0], *args)


def _parse_form(body: bytes) -> dict[str, str]:
    """Return the first value of each field of a form-encoded body."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}
