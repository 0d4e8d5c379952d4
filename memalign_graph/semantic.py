"""Semantic memory: the guidelines, read from the alignment graph's checkpoint.

Semantic memory is the alignment graph's checkpointed state on one thread per judge and namespace.
A judgment runs on any thread, so it reads the latest guidelines from that thread through the same
checkpointer; the processed result is cached by checkpoint id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver

from memalign_graph.state import Guideline


def memory_thread_id(judge: str, namespace: str) -> str:
    """The one thread that holds a judge's semantic memory within a namespace."""
    return f"memalign:{namespace}:{judge}"


@dataclass(frozen=True)
class SemanticSnapshot:
    """The guidelines at one checkpoint, most supported first."""

    checkpoint_id: str | None
    guidelines: list[Guideline] = field(default_factory=list)


class SemanticMemoryReader(Protocol):
    def read(self, judge: str, namespace: str) -> SemanticSnapshot: ...


class CheckpointSemanticMemory:
    """Reads a judge's guidelines from the alignment thread of a LangGraph checkpointer."""

    def __init__(self, checkpointer: BaseCheckpointSaver) -> None:
        self._checkpointer = checkpointer
        self._cache: dict[str, SemanticSnapshot] = {}
        self._lock = threading.Lock()

    def read(self, judge: str, namespace: str) -> SemanticSnapshot:
        thread_id = memory_thread_id(judge, namespace)
        latest = self._checkpointer.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        if latest is None:
            return SemanticSnapshot(checkpoint_id=None)
        checkpoint_id = latest.checkpoint["id"]
        with self._lock:
            cached = self._cache.get(thread_id)
            if cached is not None and cached.checkpoint_id == checkpoint_id:
                return cached
        guidelines = latest.checkpoint["channel_values"].get("guidelines") or {}
        snapshot = SemanticSnapshot(checkpoint_id=checkpoint_id, guidelines=rank_guidelines(guidelines.values()))
        with self._lock:
            self._cache[thread_id] = snapshot
        return snapshot


def rank_guidelines(guidelines: object) -> list[Guideline]:
    """Order guidelines by how much feedback supports them, then by age: the order a budget cuts in."""
    return sorted(
        guidelines,  # type: ignore[arg-type]
        key=lambda guideline: (-len(guideline["feedback_ids"]), guideline["created_at"], guideline["id"]),
    )
