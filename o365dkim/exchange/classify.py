"""Turn admin API error responses into typed exceptions.

The gateway is not documented by Microsoft. The envelope shape and texts below are those
observed from the ExchangeOnlineManagement v3 module and clients that record live traffic.
Classification looks at the exception type first and the text second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from o365dkim.exchange.errors import (
    AlreadyExistsError,
    CnameMissingError,
    DomainNotAcceptedError,
    ExchangeError,
    ForbiddenError,
    NotFoundError,
    ThrottledError,
    TransientServiceError,
    UnauthorizedError,
)

#: Exception types the module itself retries as transient.
TRANSIENT_EXCEPTIONS = frozenset(
    {
        "DCOverloadedException",
        "SuitabilityDirectoryException",
        "ServerInMMException",
        "ADServerSettingsChangedException",
        "StorageTransientException",
    }
)
_CONCURRENCY_TEXT = "maximum number of concurrent requests"
_FORBIDDEN_HINT = (
    "The app needs the application permission Exchange.ManageAsApp (Office 365 Exchange "
    "Online) with admin consent and the Exchange Administrator role on its service "
    "principal; a person needs the Exchange Administrator role."
)


@dataclass(frozen=True)
class ErrorDetail:
    """The useful parts of an error envelope."""

    code: str
    exception_type: str
    text: str


def parse_envelope(payload: Any) -> ErrorDetail:
    """Return the code, exception type and text of an error envelope (tolerant of gaps)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return ErrorDetail("", "", "")
    code = str(error.get("code") or "")
    details = error.get("details") or []
    if details and isinstance(details[0], dict) and details[0].get("message"):
        parts = str(details[0]["message"]).split("|")
        if len(parts) >= 3:
            return ErrorDetail(code, _short_type(parts[1].strip()), "|".join(parts[2:]).strip())
        if len(parts) == 2:
            return ErrorDetail(code, _short_type(parts[0].strip()), parts[1].strip())
        return ErrorDetail(code, "", parts[0].strip())
    inner = error.get("innererror") or {}
    internal = inner.get("internalexception") or {} if isinstance(inner, dict) else {}
    if isinstance(internal, dict) and internal.get("message"):
        return ErrorDetail(code, _short_type(internal.get("type")), str(internal["message"]))
    return ErrorDetail(code, _short_type(inner.get("type")), str(error.get("message") or ""))


def error_from_response(cmdlet: str, response: requests.Response, request_id: str) -> ExchangeError:
    """Return the typed exception for a non-200 admin API response."""
    status = response.status_code
    text = response.text or ""
    common: dict[str, Any] = {"status_code": status, "request_id": request_id}

    if status == 429 or _CONCURRENCY_TEXT in text:
        return ThrottledError(
            f"{cmdlet} was throttled by Exchange Online (HTTP {status}).",
            retry_after=_retry_after(response),
            hint="Run fewer operations at once against this tenant, or retry later.",
            **common,
        )
    if status in (502, 503, 504):
        return TransientServiceError(
            f"{cmdlet} failed: Exchange Online is unavailable (HTTP {status}).", **common
        )
    if status == 401:
        return UnauthorizedError(
            f"{cmdlet} was rejected: the access token is invalid or expired (HTTP 401).",
            hint="Check that the token is for the admin API host and the tenant is right.",
            **common,
        )
    if status == 403:
        return ForbiddenError(
            f"{cmdlet} was rejected (HTTP 403): the caller lacks Exchange permissions.",
            hint=_FORBIDDEN_HINT,
            **common,
        )
    return _from_envelope(cmdlet, response, common)


def _from_envelope(
    cmdlet: str, response: requests.Response, common: dict[str, Any]
) -> ExchangeError:
    try:
        detail = parse_envelope(response.json())
    except ValueError:
        detail = ErrorDetail("", "", response.text.strip()[:200])
    kind = detail.exception_type
    text = detail.text or f"HTTP {response.status_code}"
    lowered = text.lower()
    common["exception_type"] = kind or None
    message = f"{cmdlet} failed: {text}"

    if kind in TRANSIENT_EXCEPTIONS:
        return TransientServiceError(message, **common)
    if kind == "ADObjectAlreadyExistsException" or "already exists" in lowered:
        return AlreadyExistsError(message, **common)
    if "cname record does not exist" in lowered:
        return CnameMissingError(message, **common)
    if "valid accepted domain" in lowered or "invalid domain name specified" in lowered:
        return DomainNotAcceptedError(
            message,
            hint="Add and verify the domain in the Microsoft 365 admin center first.",
            **common,
        )
    if "NotFound" in kind or detail.code == "NotFound" or response.status_code == 404:
        return NotFoundError(message, **common)
    return ExchangeError(message, **common)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _short_type(value: Any) -> str:
    return str(value or "").rsplit(".", 1)[-1]
