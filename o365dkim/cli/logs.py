"""Logging set-up for the CLI, with secret values masked in every line."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of each record (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None


@contextlib.contextmanager
def logging_to_stderr(*, debug: bool, secrets: Sequence[str]) -> Iterator[None]:
    """Send o365dkim's log to stderr while a command runs: warnings, or everything with --debug.

    The handler is removed afterwards, so a command run inside another program (or a
    test) leaves that program's logging as it was.
    """
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    package = logging.getLogger("o365dkim")
    saved = (package.level, package.propagate)
    quiet = {name: logging.getLogger(name).level for name in _QUIET}
    package.addHandler(handler)
    package.setLevel(logging.DEBUG if debug else logging.WARNING)
    package.propagate = False
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(saved[0])
        package.propagate = saved[1]
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
