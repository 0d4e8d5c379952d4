"""Accounting: LLM calls, tokens and wall time per graph stage and per judged item, and their cost.

A `UsageTracker` is a LangChain callback handler. Inside `track_usage(tracker)` every LangChain run
reports to it, whichever facade or graph started the run, so nothing needs a `config=` threaded through.
Stages are LangGraph node names (LangGraph puts the node in each run's `langgraph_node` metadata);
items are labels a caller sets around one piece of work with `tracker.item(label)`.
Tokens come only from what the model reports (`usage_metadata`, else `llm_output["token_usage"]`):
a model that reports nothing counts calls but no tokens, and nothing is estimated in its place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

NO_STAGE = "(outside a graph node)"

_active_tracker: ContextVar[UsageTracker | None] = ContextVar("memalign_usage_tracker", default=None)
_current_item: ContextVar[str | None] = ContextVar("memalign_usage_item", default=None)
# Registered once: LangChain adds the tracker in this context variable to every run configured under it.
register_configure_hook(_active_tracker, inheritable=True)


@dataclass
class Usage:
    """What some work cost. `seconds` is wall time: of a stage's node runs, or of an item's whole block."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    failed_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            seconds=self.seconds + other.seconds,
            failed_calls=self.failed_calls + other.failed_calls,
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class Prices:
    """Prices in any currency per million tokens, as providers publish them."""

    input_per_million: float
    output_per_million: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input_per_million + usage.output_tokens * self.output_per_million) / 1e6


class UsageTracker(BaseCallbackHandler):
    """Counts LLM calls and tokens and times graph nodes, by stage and by item; safe across threads."""

    run_inline = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, Usage] = {}
        self._items: dict[str, Usage] = {}
        self._methods: dict[str, Usage] = {}
        self._open_calls: dict[UUID, tuple[str, str | None, str | None]] = {}
        self._open_nodes: dict[UUID, tuple[str, float]] = {}

    # -- reading -------------------------------------------------------------------------------

    def by_stage(self) -> dict[str, Usage]:
        with self._lock:
            return {stage: Usage(**asdict(usage)) for stage, usage in self._stages.items()}

    def by_item(self) -> dict[str, Usage]:
        with self._lock:
            return {item: Usage(**asdict(usage)) for item, usage in self._items.items()}

    def by_method(self) -> dict[str, Usage]:
        """Usage by how the model was asked for JSON (`memalign_graph.structured_output`)."""
        with self._lock:
            return {method: Usage(**asdict(usage)) for method, usage in self._methods.items()}

    def total(self) -> Usage:
        """Calls and tokens of every stage; seconds are left out, since parallel stages overlap."""
        summed = sum(self.by_stage().values(), Usage())
        return Usage(
            calls=summed.calls,
            input_tokens=summed.input_tokens,
            output_tokens=summed.output_tokens,
            failed_calls=summed.failed_calls,
        )

    @contextmanager
    def item(self, label: str) -> Iterator[None]:
        """Credit the model calls made inside the block, and its wall time, to `label`."""
        token = _current_item.set(label)
        started = time.perf_counter()
        try:
            yield
        finally:
            _current_item.reset(token)
            with self._lock:
                self._items.setdefault(label, Usage()).seconds += time.perf_counter() - started

    # -- callbacks -----------------------------------------------------------------------------

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[Any], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._open_call(run_id, kwargs.get("metadata"))

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        self._open_call(run_id, kwargs.get("metadata"))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        input_tokens, output_tokens = reported_tokens(response)
        self._close_call(run_id, Usage(calls=1, input_tokens=input_tokens, output_tokens=output_tokens))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close_call(run_id, Usage(calls=1, failed_calls=1))

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        node = (kwargs.get("metadata") or {}).get("langgraph_node")
        if node and kwargs.get("name") == node:  # the node's own run, not a runnable inside it
            with self._lock:
                self._open_nodes[run_id] = (node, time.perf_counter())

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close_node(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close_node(run_id)

    def _open_call(self, run_id: UUID, metadata: Mapping[str, Any] | None) -> None:
        stage = (metadata or {}).get("langgraph_node") or NO_STAGE
        method = (metadata or {}).get("memalign_structured_output")
        with self._lock:
            self._open_calls[run_id] = (stage, _current_item.get(), method)

    def _close_call(self, run_id: UUID, usage: Usage) -> None:
        with self._lock:
            stage, item, method = self._open_calls.pop(run_id, (NO_STAGE, None, None))
            self._stages[stage] = self._stages.get(stage, Usage()) + usage
            if item is not None:
                self._items[item] = self._items.get(item, Usage()) + usage
            if method is not None:
                self._methods[method] = self._methods.get(method, Usage()) + usage

    def _close_node(self, run_id: UUID) -> None:
        with self._lock:
            opened = self._open_nodes.pop(run_id, None)
            if opened is not None:
                stage, started = opened
                self._stages.setdefault(stage, Usage()).seconds += time.perf_counter() - started


@contextmanager
def track_usage(tracker: UsageTracker) -> Iterator[UsageTracker]:
    """Report every LangChain run started in this block (and threads that copy its context) to `tracker`."""
    token = _active_tracker.set(tracker)
    try:
        yield tracker
    finally:
        _active_tracker.reset(token)


def reported_tokens(response: LLMResult) -> tuple[int, int]:
    """Input and output tokens as the model reported them: message usage metadata, else the provider's token_usage."""
    input_tokens = output_tokens = 0
    found = False
    for generations in response.generations:
        for generation in generations:
            usage = (
                getattr(generation.message, "usage_metadata", None) if isinstance(generation, ChatGeneration) else None
            )
            if usage:
                found = True
                input_tokens += int(usage.get("input_tokens") or 0)
                output_tokens += int(usage.get("output_tokens") or 0)
    if not found:
        token_usage = (response.llm_output or {}).get("token_usage") or {}
        input_tokens = int(token_usage.get("prompt_tokens") or 0)
        output_tokens = int(token_usage.get("completion_tokens") or 0)
    return input_tokens, output_tokens
