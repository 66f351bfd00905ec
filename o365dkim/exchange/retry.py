"""The one retry policy for admin API calls: only safe, transient failures are retried."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import tenacity
from tenacity import RetryCallState

from o365dkim.exchange.errors import ThrottledError, TransientServiceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Limits of the retry loop. The defaults follow the ExchangeOnlineManagement module:
    five retries starting at 2 s and doubling, and Retry-After on 429."""

    max_attempts: int = 6
    initial_wait: float = 2.0
    max_wait: float = 60.0
    #: Upper bound in seconds on the time spent waiting between attempts of one call.
    max_total_wait: float = 300.0
    #: The function that waits; tests pass one that records the waits instead.
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def retrying(self) -> tenacity.Retrying:
        """Return a tenacity controller applying this policy."""
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((ThrottledError, TransientServiceError)),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self.max_attempts)
            | _StopAfterTotalWait(self.max_total_wait),
            before_sleep=_log_retry,
            sleep=self.sleep,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ThrottledError) and error.retry_after is not None:
            return min(error.retry_after, self.max_total_wait)
        backoff = self.initial_wait * 2 ** (state.attempt_number - 1)
        return float(min(backoff, self.max_wait))


class _StopAfterTotalWait(tenacity.stop.stop_base):
    """Stops when the next sleep would take the total time slept past ``limit`` seconds.

    Only the sleeps count, not the calls, whose duration the HTTP timeout bounds.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for + retry_state.upcoming_sleep > self.limit


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info(
        "Admin API call failed (%s), retrying in %.1f s (attempt %d)",
        type(error).__name__,
        wait,
        state.attempt_number + 1,
    )
