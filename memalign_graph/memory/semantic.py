"""Semantic memory's one owner: every read, write, rollback and rewrite of a judge's memory thread.

Semantic memory is the alignment graph's checkpointed state on the judge's memory thread. Everything
that changes it comes through `MemoryThread`: the facade, the feedback graph, export and import, bulk
alignment. Each change holds the memory's lock (this process's threads, and every process on the same
backend), and first finishes what a crash left unfinished: a history rewrite, then an alignment run.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot

from memalign_graph.context import AlignmentContext
from memalign_graph.errors import ConfigurationError, InvalidValueError
from memalign_graph.memory.ledger import (
    NOTHING_OUTSTANDING,
    memory_thread_id,
    summary_of,
    thread_config,
    version_write,
    whole,
)
from memalign_graph.memory.locks import MemoryLock, backend_lock
from memalign_graph.memory.reader import CheckpointSemanticMemory
from memalign_graph.memory.savers import compact
from memalign_graph.records import AlignmentReport, FeedbackRecord, Guideline

Preview = Callable[[Mapping[str, Any], Mapping[str, Any], AlignmentContext], AlignmentReport | None]
"""Answers the report of a request that would change nothing, or None when it must run."""

_REWRITE_NAMESPACE = uuid.UUID("4d0c2c5e-9b7f-5a11-8f0e-2b6a1c3d9e77")


class MemoryVersion(TypedDict):
    checkpoint_id: str
    created_at: str
    guidelines: int
    feedback: int


class MemoryThread:
    """The owner of one judge's semantic memory in one namespace, over the alignment graph that writes it.

    `graph` is the alignment graph compiled with the checkpointer that holds memory. `preview` lets an
    alignment that would change nothing return at once, writing no version. `on_compact` runs after
    a rewrite (the episodic store compacts there). `context` is used to finish a run a crash left.
    """

    def __init__(
        self,
        graph: Pregel[Any, Any, Any, Any],
        *,
        judge: str,
        namespace: str,
        reader: CheckpointSemanticMemory | None = None,
        preview: Preview | None = None,
        on_compact: Callable[[], None] | None = None,
        context: AlignmentContext | None = None,
    ) -> None:
        saver = graph.checkpointer
        if not isinstance(saver, BaseCheckpointSaver):
            raise ConfigurationError(
                "MemoryThread: compile the alignment graph with checkpointer= (a LangGraph saver)."
            )
        self.graph = graph
        self.saver: BaseCheckpointSaver[Any] = saver
        self.judge = judge
        self.namespace = namespace
        self.thread_id = memory_thread_id(judge, namespace)
        self.reader = reader or CheckpointSemanticMemory(saver)
        self.context = replace(context or AlignmentContext(), namespace=namespace)
        self._preview = preview
        self._on_compact = on_compact
        self._lock = MemoryLock(self.thread_id, backend_lock(saver, self.thread_id))
        self._rewrite_thread = str(uuid.uuid5(_REWRITE_NAMESPACE, self.thread_id))
        self.recover()

    @property
    def config(self) -> RunnableConfig:
        return {"configurable": {"thread_id": self.thread_id}}

    # -- reading -----------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """Semantic memory as it is now: guidelines, their vectors, the ledger, what is outstanding."""
        return dict(self.graph.get_state(self.config).values)

    def ledger(self) -> dict[str, FeedbackRecord]:
        """The feedback records memory holds, by id."""
        return dict(self.values().get("records") or {})

    def pending(self) -> list[str]:
        """Feedback stored but not distilled yet (a batch failed, or distillation was left out)."""
        return list((self.values().get("outstanding") or NOTHING_OUTSTANDING)["distill"])

    def guidelines(self) -> list[Guideline]:
        """The current guidelines, most supported first (cached for judging)."""
        return self.reader.read(self.judge, self.namespace).guidelines

    def unfinished(self) -> tuple[str, ...]:
        """What a crash left unfinished: a history rewrite ("rewrite"), or an alignment's pending steps."""
        if self._rewrite_pending():
            return ("rewrite",)
        return _resumable(self.graph.get_state(self.config))

    def recover(self) -> None:
        """Finish a history rewrite a crash interrupted, if there is one (a cheap check when there is not).

        Until it is finished the memory thread may be empty; an owner calls this as it opens, so nothing
        reads memory in that state.
        """
        if self._rewrite_pending():
            with self._lock.hold():
                self._finish_rewrite()

    def history(self) -> list[MemoryVersion]:
        """Every version of memory, newest first: one per completed alignment, rollback or import."""
        first_of: dict[int, Any] = {}
        for found in self.saver.list(self.config):  # newest first: the last one seen is a version's own
            summary = found.checkpoint["channel_values"].get("summary")
            if summary:
                first_of[summary["version"]] = (found, summary)
        return [
            MemoryVersion(
                checkpoint_id=found.checkpoint["id"],
                created_at=found.checkpoint["ts"],
                guidelines=summary["guidelines"],
                feedback=summary["feedback"],
            )
            for _, (found, summary) in sorted(first_of.items(), key=lambda item: item[0], reverse=True)
        ]

    def values_of(self, checkpoint_id: str) -> dict[str, Any]:
        """Memory as an earlier version held it; refused for an id that is not one of `history()`."""
        if checkpoint_id not in {version["checkpoint_id"] for version in self.history()}:
            raise InvalidValueError(
                f"checkpoint_id: {checkpoint_id!r} is not a version of judge {self.judge!r}'s memory in namespace "
                f"{self.namespace!r}; see history()."
            )
        config = thread_config(self.thread_id, checkpoint_id)
        return dict(self.graph.get_state(config).values)

    # -- changing ----------------------------------------------------------------------------------

    @contextmanager
    def exclusive(self, context: AlignmentContext | None = None) -> Iterator[None]:
        """Hold the memory's lock; on entry, finish a rewrite, then an alignment run, that a crash left."""
        with self._lock.hold():
            self._finish_rewrite()
            if self.unfinished():
                self.graph.invoke(None, self.config, context=self._context(context), durability="sync")
            yield

    def align(self, request: Mapping[str, Any], *, context: AlignmentContext | None = None) -> AlignmentReport:
        """Run the alignment graph on memory with `request` (feedback, forget, ...); one at a time.

        A request that would change nothing (known feedback sent again) returns its report and writes no
        version.
        """
        run_context = self._context(context)
        with self.exclusive(run_context):
            if self._preview is not None:
                unchanged = self._preview(self.values(), request, run_context)
                if unchanged is not None:
                    return unchanged
            result = self.graph.invoke(dict(request), self.config, context=run_context, durability="sync")
        report: AlignmentReport = result["report"]
        return report

    def rollback(self, checkpoint_id: str, *, context: AlignmentContext | None = None) -> AlignmentReport:
        """Make an earlier version current again, episodes included, as one alignment run (so a crash
        half-way is finished like any other run); history keeps both versions."""
        with self.exclusive(context):
            self.values_of(checkpoint_id)  # refuses an id that is not a version
            return self.align({"restore": checkpoint_id}, context=context)

    def write(self, values: Mapping[str, Any]) -> None:
        """Make `values` (guidelines, vectors, ledger, outstanding work) the current memory, as one version.

        For import and repair; episodes are the caller's to sync (`memory.consistency`).
        """
        with self.exclusive():
            current = self.values()
            update = version_write(current, values, judge=self.judge, namespace=self.namespace)
            self.graph.update_state(self.config, update, as_node="write_memory")

    def traces(self, ids: Sequence[str]) -> tuple[dict[str, FeedbackRecord], set[str]]:
        """Where these feedback ids left traces, now or in any earlier version: their records (as the newest
        version holding each had it) and the ids of guidelines that ever cited them. What a purge must
        find everywhere else before history goes."""
        wanted = set(ids)
        records: dict[str, FeedbackRecord] = {}
        citing: set[str] = set()
        versions = [self.config] + [thread_config(self.thread_id, v["checkpoint_id"]) for v in self.history()]
        for config in versions:
            values = self.graph.get_state(config).values
            for key, record in (values.get("records") or {}).items():
                if key in wanted:
                    records.setdefault(key, record)
            citing |= {key for key, g in (values.get("guidelines") or {}).items() if wanted & set(g["feedback_ids"])}
        return records, citing

    def rewrite(self) -> None:
        """Replace the thread's history by its current version alone, so no earlier version holds what was
        forgotten, then compact the stores. Resumable: a crash half-way is finished by the next change.
        """
        with self.exclusive():
            current = self.values()
            rewrite = thread_config(self._rewrite_thread)
            self.saver.delete_thread(self._rewrite_thread)
            self.graph.update_state(rewrite, self._whole(current), as_node="write_memory")
            self._finish_rewrite()

    # -- internals ---------------------------------------------------------------------------------

    def _context(self, context: AlignmentContext | None) -> AlignmentContext:
        return replace(context or self.context, namespace=self.namespace)

    def _rewrite_pending(self) -> bool:
        return self.saver.get_tuple(thread_config(self._rewrite_thread)) is not None

    def _finish_rewrite(self) -> None:
        """Finish a rewrite: the rewrite thread holds memory, checked whole, before the old history goes."""
        if not self._rewrite_pending():
            return
        values = dict(self.graph.get_state(thread_config(self._rewrite_thread)).values)
        if not _is_whole(values):
            # Written only in part (a crash while it was written): memory itself was not touched yet.
            self.saver.delete_thread(self._rewrite_thread)
            return
        self.saver.delete_thread(self.thread_id)
        self.graph.update_state(
            self.config, self._whole(values, version=values["summary"]["version"]), as_node="write_memory"
        )
        self.saver.delete_thread(self._rewrite_thread)
        compact(self.saver)
        if self._on_compact is not None:
            self._on_compact()

    def _whole(self, values: Mapping[str, Any], *, version: int | None = None) -> dict[str, Any]:
        """A write that makes a fresh thread hold `values`, with a digest to check it was written whole."""
        summary = summary_of(values, version=version if version is not None else _version(values) + 1)
        return {
            "judge": self.judge,
            "namespace": self.namespace,
            "guidelines": whole(values.get("guidelines") or {}),
            "guideline_vectors": whole(values.get("guideline_vectors") or {}),
            "records": whole(values.get("records") or {}),
            "outstanding": values.get("outstanding") or NOTHING_OUTSTANDING,
            "summary": {**summary, "digest": _digest(values)},
        }


def _version(values: Mapping[str, Any]) -> int:
    summary = values.get("summary") or {}
    return int(summary.get("version", 0))


def _digest(values: Mapping[str, Any]) -> str:
    content = {key: values.get(key) for key in ("guidelines", "guideline_vectors", "records", "outstanding")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _is_whole(values: Mapping[str, Any]) -> bool:
    summary = values.get("summary") or {}
    return bool(summary.get("digest")) and summary["digest"] == _digest(values)


def _resumable(snapshot: StateSnapshot) -> tuple[str, ...]:
    """The steps of a run to resume: every task of the latest checkpoint (pending, failed, or done with its
    writes saved but the next checkpoint not), but for a `validate` that refused its input (it raised, so
    it changed nothing, and would raise again)."""
    names = tuple(task.name for task in snapshot.tasks)
    refused = names == ("validate",) and any(task.error for task in snapshot.tasks)
    return () if refused else names


__all__ = ["MemoryThread", "MemoryVersion", "memory_thread_id"]
