"""Logging set-up for the CLI, with secret values masked in every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

_MASK = "***"
# Libraries whose debug output can include request bodies; they stay at WARNING.
_QUIET = ("msal", "urllib3", "requests")


class SecretFilter(logging.Filter):
    """Replaces known secret values in a record's final message with ***."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [value for value in secrets if value]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = message
        for secret in self._secrets:
            masked = masked.replace(secret, _MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup_logging(*, debug: bool, secrets: Sequence[str]) -> None:
    """Send o365dkim's log to stderr: warnings by default, everything with --debug."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger("o365dkim")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
