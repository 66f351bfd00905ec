"""Failures the sandbox injects into admin API calls: latency, throttling, outages, drops."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field, fields
from typing import Any


class FaultKind(str, enum.Enum):
    """One injected failure; the value is the outcome written to the tenant's call log."""

    DROP = "dropped"  # connection closed without a response
    THROTTLE = "throttled"  # 429 with Retry-After
    CONCURRENCY = "concurrency_limit"  # the plain-text per-tenant concurrency message
    UNAVAILABLE = "unavailable"  # 503
    GATEWAY_TIMEOUT = "gateway_timeout"  # 504
    TRANSIENT_EXCEPTION = "transient_exception"  # error envelope with DCOverloadedException


# The counter attribute behind each kind, in the order faults are taken.
_COUNTERS = (
    (FaultKind.DROP, "drop_next"),
    (FaultKind.THROTTLE, "throttle_next"),
    (FaultKind.CONCURRENCY, "concurrency_message_next"),
    (FaultKind.UNAVAILABLE, "unavailable_next"),
    (FaultKind.GATEWAY_TIMEOUT, "gateway_timeout_next"),
    (FaultKind.TRANSIENT_EXCEPTION, "transient_exception_next"),
)


@dataclass
class Faults:
    """Fault settings, changeable while the server runs.

    Each ``*_next`` counter makes that many of the next InvokeCommand calls fail that way.
    When several counters are set, a call takes the first in this order: drop, throttle,
    concurrency message, 503, 504, transient exception. Change values with ``update`` (or
    plain assignment); counters are decremented under a lock, so parallel calls never take
    one fault twice.
    """

    #: Seconds of delay before each InvokeCommand response.
    latency_seconds: float = 0.0
    throttle_next: int = 0
    #: Seconds sent in the Retry-After header of throttled calls.
    throttle_retry_after: int = 2
    unavailable_next: int = 0
    gateway_timeout_next: int = 0
    drop_next: int = 0
    concurrency_message_next: int = 0
    transient_exception_next: int = 0
    #: HTTP status of the transient exception envelope (sources show 500 and 400).
    transient_exception_status: int = 500
    #: Seconds after which a device code counts as approved; None never approves.
    device_code_approval_seconds: float | None = 2.0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def update(self, **changes: Any) -> None:
        """Set several settings at once, under the lock."""
        names = {item.name for item in fields(self) if not item.name.startswith("_")}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"Unknown fault settings: {', '.join(unknown)}.")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def take(self) -> FaultKind | None:
        """Return the next fault to inject and use it up, or None when no counter is set."""
        with self._lock:
            for kind, counter in _COUNTERS:
                remaining = getattr(self, counter)
                if remaining > 0:
                    setattr(self, counter, remaining - 1)
                    return kind
        return None
