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
        if not self.hint:
            return self.message
        separator = " " if self.message.endswith((".", "!", "?", ":")) else ". "
        return f"{self.message}{separator}{self.hint}"


class InvalidInputError(O365DkimError):
    """Raised when a value given by the user breaks a rule, before anything is called."""

    exit_code = 2


class InputRequiredError(InvalidInputError):
    """Raised when a step needs a person (a prompt or an interactive sign-in) but input is off.

    Input is off with --no-input, O365DKIM_NO_INPUT=1, or when stdin is not a terminal.
    It derives from InvalidInputError so that the enable workflow re-raises it (exit 2)
    instead of reporting the domain as failed.
    """


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
