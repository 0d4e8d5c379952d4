"""`MemAlignJudge`: the two graphs behind a few methods, for people who do not want to wire graphs.

It owns nothing the graphs do not: it opens the stores, compiles the alignment and judging graphs,
runs alignment on the judge's memory thread (one at a time), and maps keys for `as_node`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from memalign_graph.alignment.graph import create_alignment_graph
from memalign_graph.config import (
    memory_home,
    open_episodic_store,
    open_postgres_checkpointer,
    resolve_chat_model,
    resolve_embeddings,
)
from memalign_graph.context import DEFAULT_MAX_CONCURRENCY, DEFAULT_NAMESPACE, AlignmentContext, JudgeContext
from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import Feedback
from memalign_graph.feedback_graph import create_feedback_graph
from memalign_graph.judging.graph import create_judge_graph
from memalign_graph.memory.async_savers import async_twin
from memalign_graph.memory.consistency import ConsistencyReport, check, sync_episodes
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.guidelines import prune_provenance
from memalign_graph.memory.locks import exclusive_alignment
from memalign_graph.memory.semantic import CheckpointSemanticMemory, memory_thread_id
from memalign_graph.records import AlignmentReport, Guideline, Verdict
from memalign_graph.spec import JudgeSpec, check_identifier


class MemAlignJudge:
    """An LLM judge that learns from experts' feedback through semantic and episodic memory.

    With no stores given, memory lives under `home` (or `MEMALIGN_HOME`, default `./.memalign`):
    Qdrant local mode in `episodes/` and a SQLite checkpointer in `semantic.sqlite`. A Qdrant URL
    (argument or `MEMALIGN_QDRANT_URL`) moves episodes to a server, a Postgres URL (argument or
    `MEMALIGN_POSTGRES_URL`) moves semantic memory to Postgres: configuration, not code.
    """

    def __init__(
        self,
        spec: JudgeSpec,
        model: str | BaseChatModel | None = None,
        *,
        embeddings: str | Embeddings | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        home: str | Path | None = None,
        qdrant_url: str | None = None,
        qdrant_api_key: str | None = None,
        postgres_url: str | None = None,
        episodic_store: EpisodicStore | None = None,
        checkpointer: BaseCheckpointSaver | None = None,
        judge_context: JudgeContext | None = None,
        alignment_context: AlignmentContext | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        check_identifier(namespace, field="namespace")
        self.spec = spec
        self.namespace = namespace
        self.model = resolve_chat_model(model)
        self.embeddings = resolve_embeddings(embeddings)
        self.max_concurrency = max_concurrency
        self.judge_context = replace(judge_context or JudgeContext(), namespace=namespace)
        self.alignment_context = replace(alignment_context or AlignmentContext(), namespace=namespace)
        self._closers: list[Any] = []
        self._sqlite: sqlite3.Connection | None = None
        self._lock_dir: Path | None = None
        try:
            self._owns_episodic_store = episodic_store is None
            self.episodic_store = episodic_store or self._open_episodic_store(home, qdrant_url, qdrant_api_key)
            self.checkpointer = checkpointer or self._open_checkpointer(home, postgres_url)
        except BaseException:
            self.close()  # a half-opened judge must not keep the local store's lock
            raise
        self._async_checkpointer = async_twin(self.checkpointer)
        if self._async_checkpointer is not None:
            self._closers.append(self._async_checkpointer.close)
        self.semantic_memory = CheckpointSemanticMemory(self.checkpointer, async_checkpointer=self._async_checkpointer)
        self.thread_id = memory_thread_id(spec.name, namespace)
        self.alignment_graph = create_alignment_graph(
            self.model,
            spec=spec,
            embeddings=self.embeddings,
            episodic_store=self.episodic_store,
            checkpointer=self.checkpointer,
            max_concurrency=max_concurrency,
        )
        self.feedback_graph = create_feedback_graph(
            self.model,
            spec=spec,
            embeddings=self.embeddings,
            episodic_store=self.episodic_store,
            semantic_memory=self.semantic_memory,
            memory_checkpointer=self.checkpointer,
            checkpointer=self.checkpointer,
        )
        self.judge_graph = create_judge_graph(
            self.model,
            spec=spec,
            embeddings=self.embeddings,
            episodic_store=self.episodic_store,
            semantic_memory=self.semantic_memory,
        )

    def _open_episodic_store(self, home: str | Path | None, url: str | None, api_key: str | None) -> EpisodicStore:
        store = open_episodic_store(home=home, url=url, api_key=api_key)
        self._closers.append(store.close)
        return store

    def _open_checkpointer(self, home: str | Path | None, postgres_url: str | None) -> BaseCheckpointSaver:
        url = postgres_url or os.environ.get("MEMALIGN_POSTGRES_URL") or None
        if url:
            saver, close = open_postgres_checkpointer(url)
            self._closers.append(close)
            return saver
        folder = memory_home(home)
        folder.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(folder / "semantic.sqlite", check_same_thread=False)
        self._closers.append(connection.close)
        self._sqlite = connection
        self._lock_dir = folder / "locks"  # other processes on this home wait for our alignments
        return SqliteSaver(connection)

    # -- judging -------------------------------------------------------------------------------

    def judge(self, *, inputs: Any, outputs: Any = None, expectations: Any = None) -> Verdict:
        """Judge one example with everything the judge has learned."""
        result = self.judge_graph.invoke(_example(inputs, outputs, expectations), context=self.judge_context)
        return result["verdict"]

    async def ajudge(self, *, inputs: Any, outputs: Any = None, expectations: Any = None) -> Verdict:
        result = await self.judge_graph.ainvoke(_example(inputs, outputs, expectations), context=self.judge_context)
        return result["verdict"]

    def batch(
        self, examples: Sequence[dict[str, Any]], *, max_concurrency: int | None = None, return_exceptions: bool = False
    ) -> list[Verdict | Exception]:
        """Judge many examples with bounded concurrency; each is a dict of inputs/outputs/expectations.

        With `return_exceptions=True` an example that gets no verdict yields its exception in place,
        so one bad answer does not discard the verdicts already paid for.
        """
        config = RunnableConfig(max_concurrency=max_concurrency or self.max_concurrency)
        results = self.judge_graph.batch(
            _examples(examples), config, context=self.judge_context, return_exceptions=return_exceptions
        )
        return [result if isinstance(result, Exception) else result["verdict"] for result in results]

    async def abatch(
        self, examples: Sequence[dict[str, Any]], *, max_concurrency: int | None = None, return_exceptions: bool = False
    ) -> list[Verdict | Exception]:
        """`batch` on the event loop: every judgment awaits its memory reads and its model call, so
        `max_concurrency` judgments are in flight in one thread."""
        config = RunnableConfig(max_concurrency=max_concurrency or self.max_concurrency)
        results = await self.judge_graph.abatch(
            _examples(examples), config, context=self.judge_context, return_exceptions=return_exceptions
        )
        return [result if isinstance(result, Exception) else result["verdict"] for result in results]

    # -- alignment and forgetting --------------------------------------------------------------

    def align(
        self,
        feedback: Iterable[Feedback | dict[str, Any]] = (),
        *,
        forget: Iterable[str] = (),
        forget_guidelines: Iterable[str] = (),
        purge: bool = False,
    ) -> AlignmentReport:
        """Learn from feedback (and forget ids) in one alignment run; re-sending known feedback is a no-op.

        An alignment that an earlier crash left unfinished is completed first, so no feedback it
        carried is lost. `purge=True` also erases forgotten feedback from memory's checkpoint history.
        """
        payload = {
            "feedback": [item.as_input() if isinstance(item, Feedback) else dict(item) for item in feedback],
            "forget": list(forget),
            "forget_guidelines": list(forget_guidelines),
        }
        with self._exclusive():
            self._finish_unfinished_run()
            result = self.alignment_graph.invoke(payload, self._memory_config(), context=self.alignment_context)
            if purge:
                self._rewrite_history()
        return result["report"]

    def forget(self, feedback_ids: Iterable[str], *, purge: bool = False) -> AlignmentReport:
        """Delete feedback: its episode, its share of every guideline, and guidelines left with none.

        `purge=True` is the privacy deletion: no copy of the feedback stays in checkpoint history
        either (earlier versions of memory are dropped, so rollback starts over from here).
        """
        return self.align(forget=feedback_ids, purge=purge)

    def forget_guidelines(self, guideline_ids: Iterable[str]) -> AlignmentReport:
        return self.align(forget_guidelines=guideline_ids)

    # -- inspection, consistency and rollback --------------------------------------------------

    def guidelines(self) -> list[Guideline]:
        """The current guidelines, most supported first (embeddings left out)."""
        snapshot = self.semantic_memory.read(self.spec.name, self.namespace)
        return [_without_embedding(guideline) for guideline in snapshot.guidelines]

    def history(self) -> list[dict[str, Any]]:
        """Every version of semantic memory, newest first: one per completed alignment or rollback."""
        versions = []
        for snapshot in self.alignment_graph.get_state_history(self._memory_config()):
            if snapshot.next:
                continue
            values = snapshot.values
            versions.append(
                {
                    "checkpoint_id": snapshot.config["configurable"]["checkpoint_id"],
                    "created_at": snapshot.created_at,
                    "guidelines": len(values.get("guidelines") or {}),
                    "feedback": len(values.get("records") or {}),
                }
            )
        return versions

    def verify(self) -> ConsistencyReport:
        """Check that both memories agree: one episode per kept record, no stray episodes or provenance."""
        snapshot = self.alignment_graph.get_state(self._memory_config())
        return check(
            snapshot.values.get("records") or {},
            snapshot.values.get("guidelines") or {},
            self.episodic_store.feedback_ids(self.spec.name, self.namespace),
            self.alignment_context,
            unfinished_run=_resumable(snapshot.next),
        )

    def repair(self) -> ConsistencyReport:
        """Finish an interrupted alignment, then make episodes match the ledger; returns what was found."""
        with self._exclusive():
            found = self.verify()
            self._finish_unfinished_run()
            values = self.alignment_graph.get_state(self._memory_config()).values
            records = values.get("records") or {}
            sync_episodes(
                self.episodic_store, self.embeddings, self.spec.name, self.namespace, records, self.alignment_context
            )
            guidelines = values.get("guidelines") or {}
            if check(records, guidelines, set(), self.alignment_context).unknown_provenance:
                self.alignment_graph.update_state(
                    self._memory_config(),
                    {"guidelines": prune_provenance(guidelines, _provenance(guidelines) - records.keys())},
                    as_node="write_memory",
                )
        return found

    def rollback(self, checkpoint_id: str) -> None:
        """Make an earlier version of memory current again, episodes included; history keeps both."""
        with self._exclusive():
            old = self.alignment_graph.get_state(
                {"configurable": {"thread_id": self.thread_id, "checkpoint_id": checkpoint_id}}
            )
            if not old.values:
                raise ValueError(
                    f"checkpoint_id: {checkpoint_id!r} is not a version of this judge's memory; see history()."
                )
            records = old.values.get("records") or {}
            current = self.alignment_graph.get_state(self._memory_config()).values.get("records") or {}
            changed = {
                key
                for key in records.keys() & current.keys()
                if records[key]["content_hash"] != current[key]["content_hash"]
            }
            sync_episodes(
                self.episodic_store,
                self.embeddings,
                self.spec.name,
                self.namespace,
                records,
                self.alignment_context,
                replace=changed,
            )
            self.alignment_graph.update_state(
                self._memory_config(),
                {"guidelines": old.values.get("guidelines") or {}, "records": records},
                as_node="write_memory",
            )

    def export_memory(self, path: str | Path) -> dict[str, int]:
        """Write guidelines, the feedback ledger and every episode (with its vector) to a JSON file."""
        from memalign_graph.memory.transfer import export_memory

        return export_memory(self, path)

    def import_memory(self, path: str | Path) -> dict[str, int]:
        """Replace this judge's memory by an export of the same judge: lossless, and idempotent."""
        from memalign_graph.memory.transfer import import_memory

        return import_memory(self, path)

    def _finish_unfinished_run(self) -> None:
        """Resume an alignment a crash interrupted after validation; one refused at validation is dropped."""
        snapshot = self.alignment_graph.get_state(self._memory_config())
        if _resumable(snapshot.next):
            self.alignment_graph.invoke(None, self._memory_config(), context=self.alignment_context)

    def _rewrite_history(self) -> None:
        """Replace the memory thread's history by its current state alone (privacy deletion)."""
        values = self.alignment_graph.get_state(self._memory_config()).values
        self.checkpointer.delete_thread(self.thread_id)
        self.alignment_graph.update_state(
            self._memory_config(),
            {key: values[key] for key in ("judge", "namespace", "guidelines", "records") if key in values},
            as_node="write_memory",
        )
        self.episodic_store.compact(self.spec.name, self.namespace)
        if self._sqlite is not None:
            self._sqlite.execute("VACUUM")

    def _exclusive(self) -> AbstractContextManager[None]:
        return exclusive_alignment(self.thread_id, self._lock_dir)

    # -- the judge inside a user's graph -------------------------------------------------------

    def as_node(
        self,
        *,
        inputs_key: str = "inputs",
        outputs_key: str | None = "outputs",
        expectations_key: str | None = None,
        verdict_key: str = "verdict",
    ) -> RunnableLambda:
        """A node for a user's `StateGraph`: reads the mapped keys, writes the verdict under `verdict_key`."""

        def pick(state: dict[str, Any]) -> dict[str, Any]:
            return _example(
                state[inputs_key],
                state.get(outputs_key) if outputs_key else None,
                state.get(expectations_key) if expectations_key else None,
            )

        def run(state: dict[str, Any]) -> dict[str, Any]:
            return {verdict_key: self.judge(**pick(state))}

        async def arun(state: dict[str, Any]) -> dict[str, Any]:
            return {verdict_key: await self.ajudge(**pick(state))}

        return RunnableLambda(run, afunc=arun, name=f"judge:{self.spec.name}")

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    async def aclose(self) -> None:
        """`close` from async code: this event loop's connections are closed on it, then the rest."""
        if self._async_checkpointer is not None:
            await self._async_checkpointer.aclose()
        if self._owns_episodic_store and hasattr(self.episodic_store, "aclose"):
            await self.episodic_store.aclose()
        self.close()

    def __enter__(self) -> MemAlignJudge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> MemAlignJudge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _memory_config(self) -> RunnableConfig:
        return {"configurable": {"thread_id": self.thread_id}}


def _example(inputs: Any, outputs: Any = None, expectations: Any = None) -> dict[str, Any]:
    return {"inputs": inputs, "outputs": outputs, "expectations": expectations}


def _resumable(pending: tuple[str, ...]) -> tuple[str, ...]:
    """Pending steps worth resuming: a run stopped at `validate` refused its input and changed nothing."""
    return () if pending in ((), ("validate",)) else tuple(pending)


def _provenance(guidelines: Mapping[str, Guideline]) -> set[str]:
    return {feedback_id for guideline in guidelines.values() for feedback_id in guideline["feedback_ids"]}


def _examples(examples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    allowed = {"inputs", "outputs", "expectations"}
    for index, item in enumerate(examples):
        extra = sorted(set(item) - allowed)
        if extra:
            raise InvalidValueError(
                f"examples[{index}]: unknown keys {extra}; an example has only inputs, outputs and expectations."
            )
    return [_example(**item) for item in examples]


def _without_embedding(guideline: Guideline) -> Guideline:
    return Guideline(**{key: value for key, value in guideline.items() if key != "embedding"})  # type: ignore[typeddict-item]
