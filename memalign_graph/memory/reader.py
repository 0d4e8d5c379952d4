"""Reading the guidelines a judgment applies, from a judge's memory thread, cheaply and from any thread.

A judgment runs on any thread (or on none), so it reads the latest guidelines from the judge's memory
thread through the checkpointer that holds it. The result is cached by checkpoint id: while memory does
not change, a judgment pays for one indexed query (SQLite, Postgres, in memory) and nothing else.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.config import get_config
from langgraph.constants import CONFIG_KEY_CHECKPOINTER

from memalign_graph.memory.guidelines import rank_guidelines
from memalign_graph.memory.ledger import avalues_at, memory_thread_id, thread_config, values_at
from memalign_graph.memory.savers import alatest_checkpoint_id, has_async_reads, latest_checkpoint_id
from memalign_graph.per_loop import PerLoop
from memalign_graph.records import Guideline

_READ = ("guidelines", "summary")


def run_checkpointer() -> BaseCheckpointSaver[Any] | None:
    """The checkpointer of the graph run this code executes in (a user's graph, or the LangGraph server)."""
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:
        return None
    saver: BaseCheckpointSaver[Any] | None = configurable.get(CONFIG_KEY_CHECKPOINTER)
    return saver


@dataclass(frozen=True)
class SemanticSnapshot:
    """The guidelines at one checkpoint, most supported first, and how much feedback memory holds."""

    checkpoint_id: str | None
    guidelines: list[Guideline] = field(default_factory=list)
    feedback: int | None = 0  # None: memory written before it was counted

    @property
    def has_episodes(self) -> bool:
        """Whether episodic memory can hold anything: every episode is a feedback item in the ledger, so
        a judge with none skips the query's embedding and the search."""
        return self.feedback is None or self.feedback > 0


class SemanticMemoryReader(Protocol):
    def read(self, judge: str, namespace: str) -> SemanticSnapshot: ...

    async def aread(self, judge: str, namespace: str) -> SemanticSnapshot: ...


class CheckpointSemanticMemory:
    """Reads a judge's guidelines from its memory thread in a LangGraph checkpointer, cached by checkpoint id.

    Where the saver can say which checkpoint is the latest without loading it (SQLite, Postgres, in
    memory), a judgment whose memory has not changed costs that one query. A change costs a read of the
    guidelines' own changes since their last snapshot, never the feedback ledger.
    """

    def __init__(
        self,
        checkpointer: BaseCheckpointSaver[Any],
        *,
        async_checkpointer: PerLoop[BaseCheckpointSaver[Any]] | None = None,
    ) -> None:
        self._checkpointer = checkpointer
        self._async_checkpointer = async_checkpointer
        self._probes: PerLoop[dict[str, SharedProbe]] = PerLoop(_new_probes, _forget_probes)
        self._cache: dict[str, SemanticSnapshot] = {}
        self._lock = threading.Lock()

    def read(self, judge: str, namespace: str) -> SemanticSnapshot:
        thread_id = memory_thread_id(judge, namespace)
        cached = self._cached(thread_id, latest_checkpoint_id(self._checkpointer, thread_id))
        if cached is not None:
            return cached
        found = self._checkpointer.get_tuple(thread_config(thread_id))
        values = values_at(self._checkpointer, found, _READ) if found else {}
        return self._remember(thread_id, found, values)

    async def aread(self, judge: str, namespace: str) -> SemanticSnapshot:
        """`read` for async runs, on the event loop: through the checkpointer's async twin where there is
        one (`async_checkpointer`, or a saver with async reads). Only a sync-only saver is read in a thread."""
        thread_id = memory_thread_id(judge, namespace)
        saver = await self._async_checkpointer.get() if self._async_checkpointer else self._checkpointer
        if not has_async_reads(saver):
            return await asyncio.to_thread(self.read, judge, namespace)
        probes = await self._probes.get()
        probe = probes.setdefault(thread_id, SharedProbe())
        latest_id = await probe.ask(lambda: alatest_checkpoint_id(saver, thread_id))
        cached = self._cached(thread_id, latest_id)
        if cached is not None:
            return cached
        found = await saver.aget_tuple(thread_config(thread_id))
        values = await avalues_at(saver, found, _READ) if found else {}
        return self._remember(thread_id, found, values)

    def forget_cache(self) -> None:
        """Drop what was read: after history is rewritten, a checkpoint id may name another state."""
        with self._lock:
            self._cache.clear()

    def _cached(self, thread_id: str, latest_id: str | None) -> SemanticSnapshot | None:
        with self._lock:
            cached = self._cache.get(thread_id)
        if cached is not None and latest_id is not None and cached.checkpoint_id == latest_id:
            return cached
        return None

    def _remember(self, thread_id: str, found: CheckpointTuple | None, values: dict[str, Any]) -> SemanticSnapshot:
        if found is None:
            return SemanticSnapshot(checkpoint_id=None)
        guidelines = values.get("guidelines") or {}
        summary = values.get("summary")
        snapshot = SemanticSnapshot(
            checkpoint_id=found.checkpoint["id"],
            guidelines=rank_guidelines(guidelines.values()),
            feedback=int(summary["feedback"]) if isinstance(summary, dict) and "feedback" in summary else None,
        )
        with self._lock:
            self._cache[thread_id] = snapshot
        return snapshot


class SharedProbe:
    """Lets concurrent async judgments share the query for the latest checkpoint id, never a stale one.

    A judgment reuses an answer only from a query that began after the judgment arrived, so it still sees
    every alignment committed before it asked; under load, two queries serve any number of judgments
    in flight. Without this, each judgment waits its turn on the saver's one connection: with aiosqlite
    every query is a hand-off to its thread, up to 5 ms each while the loop is busy (Python's GIL
    switch interval), and 16 judgments in flight spent 40-60 ms each there.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._started = 0
        self._answered = 0  # the number of the query that gave `_answer`
        self._answer: str | None = None

    async def ask(self, query: Callable[[], Awaitable[str | None]]) -> str | None:
        arrived_after = self._started
        async with self._lock:
            if self._answered > arrived_after:
                return self._answer
            self._started += 1
            number = self._started
            self._answer = await query()
            self._answered = number
            return self._answer


async def _new_probes() -> dict[str, SharedProbe]:
    return {}


async def _forget_probes(probes: dict[str, SharedProbe]) -> None:
    probes.clear()
