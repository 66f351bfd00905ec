"""Client for the Exchange Online admin REST API (``InvokeCommand``) and its DKIM cmdlets."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from o365dkim.auth import TokenProvider
from o365dkim.dns.records import canonical_name
from o365dkim.exchange.classify import error_from_response
from o365dkim.exchange.errors import (
    NotFoundError,
    TransientServiceError,
    UnauthorizedError,
)
from o365dkim.exchange.models import AcceptedDomain, DkimConfig
from o365dkim.exchange.retry import RetryPolicy
from o365dkim.http import DEFAULT_TIMEOUT

log = logging.getLogger(__name__)

#: The anchor mailbox the ExchangeOnlineManagement module sends for app-only calls.
_APP_ANCHOR = "APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{tenant_id}"
_CLIENT_APPLICATION = "o365dkim"


class ExchangeClient:
    """Typed operations over ``POST {api_base}/adminapi/beta/{tenant_id}/InvokeCommand``."""

    def __init__(
        self,
        token_provider: TokenProvider,
        session: requests.Session,
        *,
        api_base: str = "https://outlook.office365.com",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._tokens = token_provider
        self._session = session
        self._api_base = api_base.rstrip("/")
        self._timeout = timeout
        self._retry_policy = retry_policy or RetryPolicy()

    @property
    def tenant_id(self) -> str:
        """Return the tenant GUID, read from the token's ``tid`` claim."""
        return self._tokens.get_token().tenant_id

    def invoke(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        select: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Run one cmdlet and return its rows without the ``@``-annotation keys.

        Parameters travel as JSON data, never as a script string. Throttling and
        transient failures are retried under the retry policy.
        """
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters or {})}}
        for attempt in self._retry_policy.retrying():
            with attempt:
                payload = self._post_with_token_refresh(cmdlet, body, select)
        rows = payload.get("value") or []
        return [_strip_annotations(row) for row in rows if isinstance(row, dict)]

    def get_dkim_config(self, domain: str) -> DkimConfig | None:
        """Return the DKIM config row of ``domain``, or None when it has none.

        Get-DkimSigningConfig returns every config when Identity matches nothing, so the
        rows are filtered by their Domain field.
        """
        try:
            rows = self.invoke("Get-DkimSigningConfig", {"Identity": domain})
        except NotFoundError:
            return None
        for row in rows:
            config = DkimConfig.from_row(row)
            if config.domain == canonical_name(domain):
                return config
        return None

    def new_dkim_config(self, domain: str, *, key_size: int = 2048) -> DkimConfig | None:
        """Create the domain's config with signing off; return the row if one comes back."""
        rows = self.invoke(
            "New-DkimSigningConfig",
            {"DomainName": domain, "Enabled": False, "KeySize": key_size},
        )
        return DkimConfig.from_row(rows[0]) if rows else None

    def set_dkim_enabled(self, domain: str, enabled: bool) -> None:
        """Turn DKIM signing on or off; Exchange checks both CNAMEs before turning it on."""
        self.invoke("Set-DkimSigningConfig", {"Identity": domain, "Enabled": enabled})

    def list_accepted_domains(self) -> list[AcceptedDomain]:
        """Return the tenant's accepted domains."""
        return [AcceptedDomain.from_row(row) for row in self.invoke("Get-AcceptedDomain")]

    def _post_with_token_refresh(
        self, cmdlet: str, body: Mapping[str, Any], select: Sequence[str]
    ) -> dict[str, Any]:
        try:
            return self._post(cmdlet, body, select, force_refresh=False)
        except UnauthorizedError:
            log.info("Admin API rejected the token for %s; signing in again once", cmdlet)
            return self._post(cmdlet, body, select, force_refresh=True)

    def _post(
        self,
        cmdlet: str,
        body: Mapping[str, Any],
        select: Sequence[str],
        *,
        force_refresh: bool,
    ) -> dict[str, Any]:
        token = self._tokens.get_token(force_refresh=force_refresh)
        request_id = str(uuid.uuid4())
        url = f"{self._api_base}/adminapi/beta/{token.tenant_id}/InvokeCommand"
        params = {"$select": ",".join(select)} if select else None
        headers = {
            "Authorization": f"Bearer {token.token}",
            "Accept": "application/json",
            "client-request-id": request_id,
            "X-CmdletName": cmdlet,
            "X-ClientApplication": _CLIENT_APPLICATION,
            "X-AnchorMailbox": _anchor(token.tenant_id, token.app_only, token.subject),
            "Prefer": "odata.maxpagesize=1000",
        }
        # The extra fields become keys of --log-format json lines.
        ids = {"cmdlet": cmdlet, "client_request_id": request_id}
        log.debug(
            "POST InvokeCommand %s tenant=%s client-request-id=%s",
            cmdlet,
            token.tenant_id,
            request_id,
            extra=ids,
        )
        try:
            response = self._session.post(
                url, json=body, headers=headers, params=params, timeout=self._timeout
            )
        except (requests.ConnectionError, requests.Timeout) as err:
            raise TransientServiceError(
                f"{cmdlet} failed: the connection to the admin API was lost "
                f"({type(err).__name__}).",
                request_id=request_id,
            ) from err

        log.debug(
            "%s returned HTTP %d (client-request-id=%s)",
            cmdlet,
            response.status_code,
            request_id,
            extra=ids,
        )
        if response.status_code != 200:
            raise error_from_response(cmdlet, response, request_id)
        return _json_object(response, cmdlet, request_id)


def _anchor(tenant_id: str, app_only: bool, subject: str) -> str:
    if app_only or "@" not in subject:
        return _APP_ANCHOR.format(tenant_id=tenant_id)
    return f"UPN:{subject}"


def _strip_annotations(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if "@" not in key}


def _json_object(response: requests.Response, cmdlet: str, request_id: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError as err:
        raise TransientServiceError(
            f"{cmdlet} returned a body that is not JSON.", request_id=request_id
        ) from err
    if not isinstance(payload, dict):
        raise TransientServiceError(
            f"{cmdlet} returned an unexpected JSON body.", request_id=request_id
        )
    return payload
