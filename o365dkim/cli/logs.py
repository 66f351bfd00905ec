"""Logging set-up for the CLI: text or JSON lines on stderr, with secret values masked.

``--log-format json`` writes one JSON object per line: ``time`` (ISO 8601, UTC),
``level``, ``logger``, ``message``, the command's context (such as ``domain``), any field
passed with ``extra=`` (such as ``client_request_id``), and ``exception`` with --debug.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

_MASK = "***"
#: Shorter values are too likely to occur in ordinary text to be masked.
_MIN_SECRET_LENGTH = 4
# Libraries whose debug output can include request bodies; they stay at WARNING.
_QUIET = ("msal", "urllib3", "requests")
#: Attributes every LogRecord has; any other attribute was passed with ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
}


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


class Masker:
    """The secret values to hide in everything written to stderr; settings add more later."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Worker threads (bulk) may add secrets while another thread logs.
        self._lock = threading.Lock()
        self._variants: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        """Add values to mask, both as they are and as JSON escapes them."""
        with self._lock:
            variants = set(self._variants)
            for value in secrets:
                if value and len(value) >= _MIN_SECRET_LENGTH:
                    variants.update((value, json.dumps(value)[1:-1]))
            # Longest first, so a secret that contains another is masked whole.
            self._variants = sorted(variants, key=len, reverse=True)

    def mask(self, text: str) -> str:
        """Return ``text`` with every known secret replaced by ***."""
        for value in self._variants:
            text = text.replace(value, _MASK)
        return text


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, context: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.context = dict(context or {})

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
        data: dict[str, Any] = {
            "time": time.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(self.context)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of each record (test runners swap it)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__(sys.stderr)
        self.masker = masker

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None

    def format(self, record: logging.LogRecord) -> str:
        # Masking the finished line also covers arguments, extra fields and tracebacks.
        return self.masker.mask(super().format(record))


#: The handler of the command that is running, so nested set-ups and notices share it.
_active: _StderrHandler | None = None


@contextlib.contextmanager
def logging_to_stderr(
    *,
    debug: bool,
    secrets: Sequence[str | None],
    log_format: str = "text",
    context: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Send o365dkim's log to stderr while a command runs: warnings, or everything with --debug.

    ``log_format`` is "text" or "json". Inside a running set-up, a second call only adds
    ``secrets`` to the mask. The handler is removed afterwards, so a command run inside
    another program (or a test) leaves that program's logging as it was.
    """
    global _active  # noqa: PLW0603 -- one CLI command runs per process at a time
    if _active is not None:
        _active.masker.add(secrets)
        yield
        return

    handler = _StderrHandler(Masker(secrets))
    if log_format == "json":
        handler.setFormatter(JsonFormatter(context))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("o365dkim")
    saved = (package.level, package.propagate)
    quiet = {name: logging.getLogger(name).level for name in _QUIET}
    package.addHandler(handler)
    package.setLevel(logging.DEBUG if debug else logging.WARNING)
    package.propagate = False
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    _active = handler
    try:
        yield
    finally:
        _active = None
        package.removeHandler(handler)
        package.setLevel(saved[0])
        package.propagate = saved[1]
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def add_secrets(secrets: Iterable[str | None]) -> None:
    """Mask these values too in the running command's stderr (no-op outside a command)."""
    if _active is not None:
        _active.masker.add(secrets)


def mask(text: str) -> str:
    """Return ``text`` with the running command's known secrets replaced by ***."""
    return _active.masker.mask(text) if _active is not None else text


def json_lines() -> bool:
    """Return True when the running command writes its log as JSON lines."""
    return _active is not None and isinstance(_active.formatter, JsonFormatter)


def notice(message: str, *, logger: str = "o365dkim.cli", **fields: Any) -> None:
    """Show a message that a person must act on, whatever the log level.

    With JSON logs it is a WARNING record carrying ``fields``; otherwise the plain
    message on stderr.
    """
    if _active is None or not json_lines():
        sys.stderr.write(mask(message) + "\n")
        sys.stderr.flush()
        return
    record = logging.getLogger(logger).makeRecord(
        logger, logging.WARNING, "(notice)", 0, message, (), None, extra=fields
    )
    _active.handle(record)
