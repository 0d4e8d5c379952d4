"""Semantic memory: the guidelines, read from the alignment graph's checkpoint.

Semantic memory is the alignment graph's checkpointed state on one thread per judge and namespace.
A judgment runs on any thread, so it reads the latest guidelines from that thread through the same
checkpointer; the processed result is cached by checkpoint id.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.config import get_config
from langgraph.constants import CONFIG_KEY_CHECKPOINTER

from memalign_graph.memory.per_loop import PerLoop
from memalign_graph.records import Guideline

_THREAD_NAMESPACE = uuid.UUID("0b7c53f4-2a0e-5d8e-9a51-3c1f3e4d2b61")


def memory_thread_id(judge: str, namespace: str) -> str:
    """The one thread that holds a judge's semantic memory within a namespace.

    A UUID derived from ``memalign:{namespace}:{judge}``: the LangGraph server accepts only UUID
    thread ids, and a derived one lets every process find the same thread.
    """
    return str(uuid.uuid5(_THREAD_NAMESPACE, f"memalign:{namespace}:{judge}"))


def run_checkpointer() -> BaseCheckpointSaver | None:
    """The checkpointer of the graph run this code executes in (a user's graph, or the LangGraph server)."""
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:
        return None
    return configurable.get(CONFIG_KEY_CHECKPOINTER)


@dataclass(frozen=True)
class SemanticSnapshot:
    """The guidelines at one checkpoint, most supported first."""

    checkpoint_id: str | None
    guidelines: list[Guideline] = field(default_factory=list)


class SemanticMemoryReader(Protocol):
    def read(self, judge: str, namespace: str) -> SemanticSnapshot: ...

    async def aread(self, judge: str, namespace: str) -> SemanticSnapshot: ...


class CheckpointSemanticMemory:
    """Reads a judge's guidelines from the alignment thread of a LangGraph checkpointer.

    Loading a checkpoint deserializes the whole alignment state (guidelines with their embeddings, and
    the feedback ledger): tens of milliseconds at a thousand records. Where the checkpointer lets us ask
    for the latest checkpoint id alone (SQLite, Postgres, in memory), a judgment pays only for that query until
    an alignment changes memory.
    """

    def __init__(
        self, checkpointer: BaseCheckpointSaver, *, async_checkpointer: PerLoop[BaseCheckpointSaver] | None = None
    ) -> None:
        self._checkpointer = checkpointer
        self._async_checkpointer = async_checkpointer
        self._probes: PerLoop[dict[str, SharedProbe]] = PerLoop(_new_probes, _forget_probes)
        self._cache: dict[str, SemanticSnapshot] = {}
        self._lock = threading.Lock()

    def read(self, judge: str, namespace: str) -> SemanticSnapshot:
        thread_id = memory_thread_id(judge, namespace)
        cached = self._cached(thread_id)
        if cached is not None:
            return cached
        return self._remember(thread_id, self._checkpointer.get_tuple(_latest(thread_id)))

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
        cached = self._cached_snapshot(thread_id, latest_id)
        if cached is not None:
            return cached
        return self._remember(thread_id, await saver.aget_tuple(_latest(thread_id)))

    def _cached(self, thread_id: str) -> SemanticSnapshot | None:
        return self._cached_snapshot(thread_id, latest_checkpoint_id(self._checkpointer, thread_id))

    def _cached_snapshot(self, thread_id: str, latest_id: str | None) -> SemanticSnapshot | None:
        with self._lock:
            cached = self._cache.get(thread_id)
        if cached is not None and latest_id is not None and cached.checkpoint_id == latest_id:
            return cached
        return None

    def _remember(self, thread_id: str, latest: CheckpointTuple | None) -> SemanticSnapshot:
        if latest is None:
            return SemanticSnapshot(checkpoint_id=None)
        guidelines = latest.checkpoint["channel_values"].get("guidelines") or {}
        snapshot = SemanticSnapshot(
            checkpoint_id=latest.checkpoint["id"], guidelines=rank_guidelines(guidelines.values())
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


def _latest(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


def is_saver(checkpointer: BaseCheckpointSaver, class_name: str) -> bool:
    """Whether the saver is (or extends) LangGraph's saver of that name. Matched by name, so the optional
    Postgres and aiosqlite packages are not imported; subclasses, as a server may bring, count too."""
    return any(base.__name__ == class_name for base in type(checkpointer).__mro__)


_LATEST_SQL = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)


def latest_checkpoint_id(checkpointer: BaseCheckpointSaver, thread_id: str) -> str | None:
    """The id of a thread's latest checkpoint without loading it, or None where the saver cannot tell."""
    if isinstance(checkpointer, InMemorySaver):
        checkpoints = checkpointer.storage.get(thread_id, {}).get("", {})
        return max(checkpoints) if checkpoints else None
    if isinstance(checkpointer, SqliteSaver):
        with checkpointer.cursor(transaction=False) as cursor:
            cursor.execute(_LATEST_SQL.replace("%s", "?"), (thread_id,))
            row = cursor.fetchone()
        return row[0] if row else None
    if is_saver(checkpointer, "PostgresSaver"):
        with checkpointer._cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(_LATEST_SQL, (thread_id,))
            row = cursor.fetchone()
        return row["checkpoint_id"] if row else None
    return None


def has_async_reads(checkpointer: BaseCheckpointSaver) -> bool:
    """Whether the saver reads checkpoints with its own async code (SqliteSaver's async methods only raise)."""
    if isinstance(checkpointer, SqliteSaver) or is_saver(checkpointer, "PostgresSaver"):
        return False
    return type(checkpointer).aget_tuple is not BaseCheckpointSaver.aget_tuple


async def alatest_checkpoint_id(checkpointer: BaseCheckpointSaver, thread_id: str) -> str | None:
    """`latest_checkpoint_id` through an async saver's own connection, for the event loop."""
    if isinstance(checkpointer, InMemorySaver):
        return latest_checkpoint_id(checkpointer, thread_id)  # a dict lookup
    if is_saver(checkpointer, "AsyncSqliteSaver"):
        await checkpointer.setup()  # type: ignore[attr-defined]
        async with checkpointer.lock:  # type: ignore[attr-defined]
            rows = await checkpointer.conn.execute_fetchall(_LATEST_SQL.replace("%s", "?"), (thread_id,))  # type: ignore[attr-defined]
        return next(iter(rows))[0] if rows else None
    if is_saver(checkpointer, "AsyncPostgresSaver"):
        async with checkpointer._cursor() as cursor:  # type: ignore[attr-defined]
            await cursor.execute(_LATEST_SQL, (thread_id,))
            row = await cursor.fetchone()
        return row["checkpoint_id"] if row else None
    return None


def rank_guidelines(guidelines: object) -> list[Guideline]:
    """Order guidelines by how much feedback supports them, then by age: the order a budget cuts in."""
    return sorted(
        guidelines,  # type: ignore[arg-type]
        key=lambda guideline: (-len(guideline["feedback_ids"]), guideline["created_at"], guideline["id"]),
    )
