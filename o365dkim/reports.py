"""The results of the enable workflow and the events it emits while running."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from o365dkim.errors import O365DkimError


class Result(str, enum.Enum):
    """The end state of one domain."""

    ENABLED = "enabled"
    ALREADY_ENABLED = "already_enabled"
    PENDING_DNS = "pending_dns"
    FAILED = "failed"
    # Only `status` reports these two.
    DISABLED = "disabled"
    NOT_CONFIGURED = "not_configured"


@dataclass
class SelectorState:
    """One selector CNAME and what the name servers return for it."""

    host: str
    target: str
    published: bool
    #: True when the target has a DKIM TXT key, None when it could not be checked.
    key_published: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the selector as the JSON output shows it."""
        return {
            "host": self.host,
            "target": self.target,
            "published": self.published,
            "key_published": self.key_published,
        }


@dataclass
class EnableReport:
    """Everything the CLI shows about one domain after a run."""

    domain: str
    result: Result
    enabled: bool = False
    status: str | None = None
    key_size: dict[str, int | None] = field(default_factory=dict)
    selectors: list[SelectorState] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    error: O365DkimError | None = None
    #: One line per selector and name server that does not return the target yet.
    pending: list[str] = field(default_factory=list)
    #: Things the DNS provider noticed that need a person, such as CNAME flattening.
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report in the documented JSON shape."""
        error = None
        if self.error is not None:
            error = {"type": type(self.error).__name__, "message": str(self.error)}
        return {
            "domain": self.domain,
            "result": self.result.value,
            "enabled": self.enabled,
            "status": self.status,
            "key_size": self.key_size,
            "selectors": [selector.to_dict() for selector in self.selectors],
            "changes": self.changes,
            "pending": self.pending,
            "warnings": self.warnings,
            "error": error,
        }


@dataclass(frozen=True)
class Event:
    """A step of the workflow, for progress display."""

    domain: str
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]
