"""The Exchange admin API gateway of the sandbox: ``POST /adminapi/beta/{tenant}/InvokeCommand``.

Order of checks on each call: injected latency and faults (the front door fails before
anything else), then the bearer token (401), then admin rights (403 with a NUL body), then
the request body (400), then the cmdlet itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from o365dkim.sandbox.binding import CmdletFailure, transient_failure
from o365dkim.sandbox.faults import FaultKind, Faults
from o365dkim.sandbox.responses import SandboxResponse, json_response, text_response
from o365dkim.sandbox.tenant import SandboxTenant
from o365dkim.sandbox.tokens import (
    ADMIN_ROLE_IDS,
    APP_ROLE,
    DELEGATED_PERMISSION,
    TokenIssuer,
    TokenRejected,
)

log = logging.getLogger(__name__)

CONCURRENCY_MESSAGE = (
    "You have reached the maximum number of concurrent requests per tenant. "
    "Please wait and try again."
)
# The gateway returns 403 with a body of NUL bytes, not JSON. The length here is arbitrary.
_FORBIDDEN_BODY = b"\x00" * 16
_ODATA_CONTEXT = "{base}/adminapi/beta/{tenant}/$metadata#Collection(Exchange.GenericHashTable)"


class AdminApiGateway:
    """Authorizes InvokeCommand calls, injects faults and runs the tenant's cmdlets."""

    def __init__(
        self, tenants: Mapping[str, SandboxTenant], faults: Faults, issuer: TokenIssuer
    ) -> None:
        self._tenants = tenants
        self.faults = faults
        self._issuer = issuer
        self._tenant_faults: dict[str, Faults] = {}
        self._lock = threading.Lock()
        #: The server's address, set when it starts.
        self.base_url = ""

    def faults_for(self, tenant_id: str) -> Faults:
        """Return the faults applied only to ``tenant_id``, created empty on first use.

        Calls take a tenant's own faults first, then the global ones.
        """
        with self._lock:
            return self._tenant_faults.setdefault(tenant_id.lower(), Faults())

    def invoke_command(
        self, tenant_id: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> SandboxResponse:
        """Handle one InvokeCommand request; ``headers`` has lower-case names."""
        tenant_id = tenant_id.lower()
        tenant = self._tenants.get(tenant_id)
        call = _CallContext(tenant, body, headers)
        self._wait_latency(tenant_id)

        rejection = self._reject_early(tenant_id, headers, call)
        if rejection is not None or tenant is None:
            return rejection or SandboxResponse(403, _FORBIDDEN_BODY)
        return self._run_cmdlet(tenant, query, body, call)

    def _reject_early(
        self, tenant_id: str, headers: Mapping[str, str], call: _CallContext
    ) -> SandboxResponse | None:
        """Return the response for an injected fault, a bad token or a caller without rights."""
        fault = self._take_fault(tenant_id)
        if fault is not None:
            kind, faults = fault
            response = _fault_response(kind, faults)
            call.record(kind.value, response.status)
            return response

        try:
            claims = self._authorize(tenant_id, headers.get("authorization", ""))
        except TokenRejected as err:
            call.record("unauthorized", 401)
            return _unauthorized(str(err))
        if not _has_admin_rights(claims):
            call.record("forbidden", 403)
            return SandboxResponse(403, _FORBIDDEN_BODY)
        return None

    def _run_cmdlet(
        self, tenant: SandboxTenant, query: str, body: bytes, call: _CallContext
    ) -> SandboxResponse:
        try:
            cmdlet, parameters = _parse_body(body)
        except CmdletFailure as failure:
            call.record(failure.short_type, failure.status_code)
            return _failure_response(failure, call.request_id, message="Invalid Operation")
        try:
            result = tenant.invoke_with_warnings(
                cmdlet, parameters, client_request_id=call.request_id, anchor_mailbox=call.anchor
            )
        except CmdletFailure as failure:
            # The tenant has already written this call to its log.
            return _failure_response(failure, call.request_id)

        payload = {
            "@odata.context": _ODATA_CONTEXT.format(base=self.base_url, tenant=tenant.tenant_id),
            "@adminapi.warnings": result.warnings,
            "value": _select(result.rows, query),
        }
        return json_response(200, payload)

    def _wait_latency(self, tenant_id: str) -> None:
        with self._lock:
            own = self._tenant_faults.get(tenant_id)
        delay = self.faults.latency_seconds + (own.latency_seconds if own else 0.0)
        if delay > 0:
            time.sleep(delay)

    def _take_fault(self, tenant_id: str) -> tuple[FaultKind, Faults] | None:
        with self._lock:
            own = self._tenant_faults.get(tenant_id)
        for faults in [item for item in (own, self.faults) if item is not None]:
            kind = faults.take()
            if kind is not None:
                log.info("Sandbox admin API: injecting %s for tenant %s", kind.value, tenant_id)
                return kind, faults
        return None

    def _authorize(self, tenant_id: str, authorization: str) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected("The Authorization header is missing or is not a Bearer token.")
        claims = self._issuer.verify(token.strip())
        if str(claims.get("tid", "")).lower() != tenant_id:
            raise TokenRejected(
                f"The token is for tenant {claims.get('tid')}, not for {tenant_id} in the URL."
            )
        return claims


class _CallContext:
    """Request details for the call log, read leniently before the body is validated."""

    def __init__(
        self, tenant: SandboxTenant | None, body: bytes, headers: Mapping[str, str]
    ) -> None:
        self.tenant = tenant
        self.request_id = headers.get("client-request-id")
        self.anchor = headers.get("x-anchormailbox")
        self.cmdlet = ""
        self.parameters: dict[str, Any] = {}
        try:
            command = json.loads(body)["CmdletInput"]
            self.cmdlet = str(command.get("CmdletName") or "")
            self.parameters = dict(command.get("Parameters") or {})
        except (ValueError, TypeError, KeyError, AttributeError):
            pass

    def record(self, outcome: str, status_code: int) -> None:
        if self.tenant is not None:
            self.tenant.record_call(
                self.cmdlet,
                self.parameters,
                outcome,
                status_code,
                client_request_id=self.request_id,
                anchor_mailbox=self.anchor,
            )


def _fault_response(kind: FaultKind, faults: Faults) -> SandboxResponse:
    """Return the response for an injected fault; a dropped call has status 0."""
    if kind is FaultKind.DROP:
        return SandboxResponse(0, drop=True)
    if kind is FaultKind.THROTTLE:
        seconds = faults.throttle_retry_after
        error = {
            "code": "TooManyRequests",
            "message": f"Too many requests. Retry after {seconds} seconds.",
        }
        return json_response(429, {"error": error}, {"Retry-After": str(seconds)})
    if kind is FaultKind.CONCURRENCY:
        # NOTE: the status of this plain-text response is not recorded; 429 is assumed.
        return text_response(429, CONCURRENCY_MESSAGE)
    if kind is FaultKind.UNAVAILABLE:
        return text_response(503, "Service Unavailable")
    if kind is FaultKind.GATEWAY_TIMEOUT:
        return text_response(504, "Gateway Timeout")
    return _failure_response(transient_failure(faults.transient_exception_status), None)


def _failure_response(
    failure: CmdletFailure, request_id: str | None, *, message: str = "Error executing cmdlet"
) -> SandboxResponse:
    """Return the admin API's error envelope for ``failure``; a 403 gets the NUL body instead."""
    if failure.status_code == 403:
        return SandboxResponse(403, _FORBIDDEN_BODY)
    envelope = {
        "error": {
            "code": failure.error_code,
            "message": message,
            "details": [{"code": "Client", "target": "", "message": failure.detail_message}],
            "innererror": {
                "message": failure.text,
                "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                "@Microsoft.Exchange.Admin.OData.Core.ODataServiceException.RequestId": (
                    request_id or ""
                ),
                "internalexception": {
                    "message": failure.text,
                    "type": failure.exception_type,
                    "stacktrace": "",
                },
            },
        }
    }
    log.debug("Sandbox admin API: %s (HTTP %d)", failure.short_type, failure.status_code)
    return json_response(failure.status_code, envelope)


def _unauthorized(reason: str) -> SandboxResponse:
    log.info("Sandbox admin API: rejected token: %s", reason)
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return json_response(401, {"error": {"code": "Unauthorized", "message": reason}}, headers)


def _has_admin_rights(claims: Mapping[str, Any]) -> bool:
    """Return True for an Exchange admin: the right permission plus an admin directory role."""
    if not set(claims.get("wids") or ()) & ADMIN_ROLE_IDS:
        return False
    if "scp" in claims:
        return DELEGATED_PERMISSION in str(claims["scp"]).split()
    return APP_ROLE in (claims.get("roles") or ())


def _parse_body(body: bytes) -> tuple[str, dict[str, Any]]:
    """Return the cmdlet name and parameters, or raise a 400 failure."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise _bad_request("The request body is not valid JSON.") from None
    command = payload.get("CmdletInput") if isinstance(payload, dict) else None
    if not isinstance(command, dict):
        raise _bad_request("The request body must contain a CmdletInput object.")
    name = command.get("CmdletName")
    if not isinstance(name, str) or not name.strip():
        raise _bad_request("CmdletInput.CmdletName must be a non-empty string.")
    parameters = command.get("Parameters")
    if parameters is None:
        raise _bad_request(
            "Value cannot be null. (Parameter 'Parameters')", "System.ArgumentNullException"
        )
    if not isinstance(parameters, dict):
        raise _bad_request("CmdletInput.Parameters must be an object.")
    return name, parameters


def _bad_request(text: str, exception_type: str = "System.ArgumentException") -> CmdletFailure:
    # No cmdlet ran, so there is no error id; details[0].message starts with "|".
    return CmdletFailure(400, "BadRequest", exception_type, text, error_id="")


def _select(rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Apply ``$select=A,B``: keep those properties and their ``@`` annotations."""
    values = parse_qs(query).get("$select")
    if not values:
        return rows
    wanted = {name.strip().lower() for value in values for name in value.split(",") if name.strip()}
    return [
        {key: value for key, value in row.items() if key.split("@", 1)[0].lower() in wanted}
        for row in rows
    ]
