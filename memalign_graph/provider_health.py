"""A model provider that is down is one clear error, not a wait and a warning per call.

When calls to one model fail the same way several times in a row (the connection refused, a timeout,
the key refused, the model unknown), the provider is taken to be down: later calls fail at once with
`ProviderDownError`, which names the first failure and what to check, and is not retried. After a
cool-down one call is let through; if it succeeds, calls flow again. Any success resets the count, so a
provider that fails now and then under load is never cut off; and once a provider has answered, a timeout
no longer counts at all: a server that works through a queue one call at a time (llama.cpp's) times out
the calls at the back of its queue together, and that is a busy provider, not a dead one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from memalign_graph.errors import ProviderDownError

FAILURES_IN_A_ROW = 3
COOL_DOWN_SECONDS = 30.0
_DOWN_NAMES = ("Connect", "Timeout", "Authentication", "PermissionDenied")


def means_provider_down(error: BaseException) -> bool:
    """Failures that every call would meet alike: no connection, no answer in time, the key or the model
    refused. A bad answer, a rate limit or one server error does not count."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    status = getattr(error, "status_code", None) or getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):
        return status in (401, 403, 404)
    return any(name in type(error).__name__ for name in _DOWN_NAMES)


class ProviderBreaker:
    """Counts one model's calls that failed in a row as if the provider were down, and opens past a few."""

    def __init__(
        self,
        *,
        failures: int = FAILURES_IN_A_ROW,
        cool_down: float = COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.cool_down = cool_down
        self._clock = clock
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._first: str | None = None
        self._opened_at: float | None = None
        self._trial = False
        self._answered = False

    def before_call(self) -> None:
        """Raise `ProviderDownError` while the provider counts as down (one trial call after the cool-down)."""
        with self._lock:
            if self._opened_at is None:
                return
            if not self._trial and self._clock() - self._opened_at >= self.cool_down:
                self._trial = True  # this call is the trial; the others still fail at once
                return
            raise ProviderDownError(self._message())

    def succeeded(self) -> None:
        with self._lock:
            self._in_a_row, self._first, self._opened_at, self._trial = 0, None, None, False
            self._answered = True

    def failed(self, error: BaseException) -> None:
        if isinstance(error, ProviderDownError):
            return
        with self._lock:
            if self._answered and _is_timeout(error):
                return  # a provider that has answered is slow or busy (a queue of calls), not down
            if not means_provider_down(error):
                self._in_a_row, self._first = 0, None
                if self._trial:
                    self._opened_at, self._trial = None, False
                return
            self._in_a_row += 1
            self._first = self._first or _one_line(error)
            if self._in_a_row >= self.failures or self._trial:
                self._opened_at, self._trial = self._clock(), False

    @property
    def down(self) -> bool:
        with self._lock:
            return self._opened_at is not None

    def _message(self) -> str:
        return (
            f"the model provider is not answering: {self._in_a_row} calls in a row failed ({self._first}); "
            "check MEMALIGN_MODEL, MEMALIGN_BASE_URL and the API key (calls fail at once for "
            f"{self.cool_down:.0f} s, then one is tried again)"
        )


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, TimeoutError) or "Timeout" in type(error).__name__


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    text = text if len(text) <= 160 else text[:159] + "…"
    return f"{type(error).__name__}: {text}"
