"""What a graph's nodes work with: the judge, its model, embeddings and stores.

The `create_*` factories bind these once. Graphs served by the LangGraph server resolve them per run
from the run's context instead (see `memalign_graph.serving`); both hand the nodes a `Resources`
through a resolver, so the node code is the same either way.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.runtime import Runtime

from memalign_graph.context import DEFAULT_NAMESPACE, MemoryContext
from memalign_graph.errors import ConfigurationError, InvalidValueError
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.reader import CheckpointSemanticMemory, SemanticMemoryReader, run_checkpointer
from memalign_graph.spec import JudgeSpec
from memalign_graph.structured_output import StructuredCalls, StructuredOutput, structured_calls


@dataclass(frozen=True)
class Resources:
    """Everything a node needs besides its state and per-run settings.

    `semantic_memory=None` means: read guidelines through the checkpointer of the run itself, as a
    judge graph nested in a user's checkpointed graph, or served by the LangGraph server, does.
    `namespace` binds every run to one tenant: a run's context cannot name another.
    `memory_checkpointer` holds the judges' memory threads when a run has no checkpointer of its own (a
    stateless run of the LangGraph server).
    """

    spec: JudgeSpec
    model: BaseChatModel
    embeddings: Embeddings
    episodic_store: EpisodicStore
    semantic_memory: SemanticMemoryReader | None = None
    namespace: str | None = None
    structured_output: StructuredOutput = "auto"
    memory_checkpointer: BaseCheckpointSaver[Any] | None = None

    @property
    def calls(self) -> StructuredCalls:
        """How this model is asked for JSON (shared by every graph using the same model object)."""
        return structured_calls(self.model, self.structured_output)


ResourceResolver = Callable[[Runtime[Any]], Resources]
"""Answers a run's resources. One may also have `ready(runtime) -> bool`: True when answering is a
lookup, with nothing to open, so async nodes can call it on the event loop."""


class FixedResources:
    """A resolver that always answers the same resources (what the `create_*` factories use)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def __call__(self, runtime: Runtime[Any]) -> Resources:
        return self.resources

    def ready(self, runtime: Runtime[Any]) -> bool:
        return True


def fixed(resources: Resources) -> ResourceResolver:
    return FixedResources(resources)


async def aresolve(resolve: ResourceResolver, runtime: Runtime[Any]) -> Resources:
    """Resolve for an async node: on the event loop once the resources are open; a first use, which may
    open stores or load an embedding model, goes to a worker thread."""
    ready = getattr(resolve, "ready", None)
    if ready is not None and ready(runtime):
        return resolve(runtime)
    return await asyncio.to_thread(resolve, runtime)


_readers: weakref.WeakKeyDictionary[BaseCheckpointSaver, CheckpointSemanticMemory] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def semantic_memory_of(resources: Resources) -> SemanticMemoryReader:
    """The resources' reader, or one over the current run's checkpointer (cached, so its cache lives)."""
    if resources.semantic_memory is not None:
        return resources.semantic_memory
    checkpointer = run_checkpointer() or resources.memory_checkpointer
    if checkpointer is None:
        raise ConfigurationError(
            "The judging graph has no semantic memory to read: pass semantic_memory= to create_judge_graph, "
            "or run it inside a graph compiled with a checkpointer (the LangGraph server supplies one)."
        )
    with _readers_lock:
        reader = _readers.get(checkpointer)
        if reader is None:
            reader = _readers[checkpointer] = CheckpointSemanticMemory(checkpointer)
        return reader


def namespace_for(resources: Resources, context: MemoryContext | None) -> str:
    """The namespace a run works in: the one its graph is bound to, else its context's, else the default.

    A bound graph refuses a run whose context names another namespace, so no caller reaches another
    tenant's memory through it.
    """
    asked = context.namespace if context is not None else None
    if resources.namespace is None:
        return asked or DEFAULT_NAMESPACE
    if asked is not None and asked != resources.namespace:
        raise InvalidValueError(
            f"namespace: this judge is bound to namespace {resources.namespace!r}, and a run cannot name "
            f"{asked!r}; open a judge with namespace={asked!r} for that one."
        )
    return resources.namespace
