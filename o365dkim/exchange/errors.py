"""Typed errors for failures reported by the Exchange Online admin API."""

from __future__ import annotations

from o365dkim.errors import O365DkimError


class ExchangeError(O365DkimError):
    """Raised when the admin API returns an error that no subclass describes."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status_code: int | None = None,
        exception_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.exception_type = exception_type
        self.request_id = request_id


class DomainNotAcceptedError(ExchangeError):
    """Raised when the domain is not an accepted domain of the tenant."""


class CnameMissingError(ExchangeError):
    """Raised by enable while Exchange cannot yet see both selector CNAMEs."""


class AlreadyExistsError(ExchangeError):
    """Raised by New-DkimSigningConfig when the domain already has a config."""


class NotFoundError(ExchangeError):
    """Raised when the requested object does not exist (or has not replicated yet)."""


class ForbiddenError(ExchangeError):
    """Raised on 403: Exchange.ManageAsApp or the Exchange Administrator role is missing."""


class UnauthorizedError(ExchangeError):
    """Raised on 401: the token is invalid, expired or for the wrong resource."""


class ThrottledError(ExchangeError):
    """Raised on 429 or the per-tenant concurrency message once retries are used up."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class TransientServiceError(ExchangeError):
    """Raised on 503, 504, lost connections and transient exceptions once retries are used up."""
