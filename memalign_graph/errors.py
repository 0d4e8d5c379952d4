"""The errors a user can meet, each one saying what went wrong and what to change.

Each is also a `ValueError` (the cause is what the caller gave: a record, a setting) or a `RuntimeError`
(the cause is elsewhere: a model's answer, a store, a provider), the kinds the LangGraph server passes
to its clients with their message; any other kind reaches Studio and the SDK as "An internal error".
"""

from __future__ import annotations


class MemAlignError(Exception):
    """Base class for every error this library raises on purpose."""


class InvalidValueError(MemAlignError, ValueError):
    """A record or a verdict does not fit the judge: the message names the field and the fix."""


class ConfigurationError(MemAlignError, ValueError):
    """Something the library needs (a model, a store location) is not configured."""


class VerdictParseError(MemAlignError, RuntimeError):
    """The judge model gave no valid verdict after every retry; nothing was made up in its place."""

    def __init__(self, message: str, *, attempts: int, raw_outputs: list[str]) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.raw_outputs = raw_outputs


class EpisodicStoreError(MemAlignError, RuntimeError):
    """The episodic store cannot be used as configured (for example a dimension mismatch)."""


class ProviderDownError(MemAlignError, RuntimeError):
    """The model provider failed alike on several calls in a row (no connection, no answer in time, the
    key or model refused); calls fail at once for a while instead of waiting out each timeout."""
