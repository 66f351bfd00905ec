"""The exception hierarchy: every error o365dkim raises derives from O365DkimError."""

from __future__ import annotations


class O365DkimError(Exception):
    """Base of every error that o365dkim raises on purpose.

    The CLI prints ``str(error)`` as one line (plus ``hint`` when set) and exits
    with ``exit_code``.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class InvalidInputError(O365DkimError):
    """Raised when a value given by the user breaks a rule, before anything is called."""

    exit_code = 2


class ConfigurationError(O365DkimError):
    """Raised when a required setting is missing or two settings contradict each other."""

    exit_code = 2


class NotConfiguredError(O365DkimError):
    """Raised when a read-only command needs a DKIM config that the domain does not have."""


class AuthenticationError(O365DkimError):
    """Raised when sign-in through MSAL fails or the token cannot be used."""


class DnsError(O365DkimError):
    """Base of errors raised while finding zones, writing records or querying servers."""


class ZoneNotFoundError(DnsError):
    """Raised when no zone at the DNS provider contains the record's name."""


class DnsConflictError(DnsError):
    """Raised when a selector name has a different record and --replace was not given."""


class DnsProviderError(DnsError):
    """Raised when a DNS provider rejects a request or cannot be reached."""


class DnsReadBackError(DnsError):
    """Raised when a record read back after writing differs from what was written."""


class UnknownProviderError(ConfigurationError):
    """Raised when no built-in or installed DNS provider has the requested name."""
