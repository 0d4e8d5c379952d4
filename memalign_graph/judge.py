"""`MemAlignJudge`: the two graphs behind a few methods, for people who do not want to wire graphs.

It opens the stores through configuration, compiles the graphs bound to its namespace, and delegates:
every change of semantic memory goes through the memory's owner (`MemoryThread`), so the facade, the
feedback graph, export and import take the same locks and finish what a crash left the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Unpack

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from memalign_graph.alignment import create_alignment_graph
from memalign_graph.alignment.memory import open_memory_thread
from memalign_graph.alignment.plan import request_ids
from memalign_graph.config import (
    open_episodic_store,
    open_semantic_checkpointer,
    resolve_chat_model,
    resolve_embeddings,
    structured_output_setting,
)
from memalign_graph.context import DEFAULT_MAX_CONCURRENCY, DEFAULT_NAMESPACE, AlignmentContext, JudgeContext
from memalign_graph.evaluator_results import (
    AsyncEvaluator,
    ComparativeEvaluator,
    Evaluator,
    LabelScores,
    make_async_evaluator,
    make_comparative_evaluator,
    make_evaluator,
)
from memalign_graph.feedback import Feedback
from memalign_graph.feedback_graph import create_feedback_graph, delete_review_threads
from memalign_graph.judging.graph import build_judge_graph
from memalign_graph.judging.leakage import (
    LeakageOptions,
    batch_exclude_self,
    batch_inputs,
    guard_input,
    guarded_context,
)
from memalign_graph.judging.node import judge_node
from memalign_graph.judging.state import JudgeInput
from memalign_graph.memory.async_savers import async_twin
from memalign_graph.memory.consistency import ConsistencyReport, repair_memory, verify_memory
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.reader import CheckpointSemanticMemory
from memalign_graph.memory.semantic import MemoryVersion
from memalign_graph.memory.transfer import export_memory, import_memory
from memalign_graph.records import AlignmentReport, Guideline, Verdict
from memalign_graph.regressions import checked_alignment
from memalign_graph.resources import Resources, fixed
from memalign_graph.spec import JudgeSpec, check_identifier
from memalign_graph.structured_output import StructuredOutput


class MemAlignJudge:
    """An LLM judge that learns from experts' feedback through semantic and episodic memory.

    With no stores given, memory lives under `home` (or `MEMALIGN_HOME`, default `./.memalign`):
    Qdrant local mode in `episodes/` and a SQLite checkpointer in `semantic.sqlite`. A Qdrant URL
    (argument or `MEMALIGN_QDRANT_URL`) moves episodes to a server, a Postgres URL (argument or
    `MEMALIGN_POSTGRES_URL`) moves semantic memory to Postgres: configuration, not code. Every graph it
    owns runs in its `namespace`, and no run can name another.
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
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        judge_context: JudgeContext | None = None,
        alignment_context: AlignmentContext | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        structured_output: StructuredOutput | None = None,
    ) -> None:
        check_identifier(namespace, field="namespace")
        self.spec = spec
        self.namespace = namespace
        self.model = resolve_chat_model(model)
        self.structured_output = structured_output_setting(structured_output)
        self.embeddings = resolve_embeddings(embeddings)
        self.max_concurrency = max_concurrency
        self.judge_context = replace(judge_context or JudgeContext(), namespace=namespace)
        self.alignment_context = replace(alignment_context or AlignmentContext(), namespace=namespace)
        self._closers: list[Any] = []
        try:
            self._owns_episodic_store = episodic_store is None
            if episodic_store is None:
                episodic_store = open_episodic_store(home=home, url=qdrant_url, api_key=qdrant_api_key)
                self._closers.append(episodic_store.close)
            self.episodic_store: EpisodicStore = episodic_store
            if checkpointer is None:
                checkpointer, close = open_semantic_checkpointer(home=home, postgres_url=postgres_url)
                self._closers.append(close)
            self.checkpointer: BaseCheckpointSaver[Any] = checkpointer
        except BaseException:
            self.close()  # a half-opened judge must not keep the local store's lock
            raise
        self._async_checkpointer = async_twin(self.checkpointer)
        if self._async_checkpointer is not None:
            self._closers.append(self._async_checkpointer.close)
        reader = CheckpointSemanticMemory(self.checkpointer, async_checkpointer=self._async_checkpointer)
        self.alignment_graph = create_alignment_graph(
            self.model,
            spec=spec,
            embeddings=self.embeddings,
            episodic_store=self.episodic_store,
            checkpointer=self.checkpointer,
            namespace=namespace,
            structured_output=self.structured_output,
            max_concurrency=max_concurrency,
        )
        self.memory = open_memory_thread(
            self.alignment_graph,
            spec,
            namespace,
            episodic_store=self.episodic_store,
            reader=reader,
            context=self.alignment_context,
        )
        self.thread_id = self.memory.thread_id
        self.semantic_memory = reader
        self._resources = Resources(
            spec=spec,
            model=self.model,
            embeddings=self.embeddings,
            episodic_store=self.episodic_store,
            semantic_memory=reader,
            namespace=namespace,
            structured_output=self.structured_output,
        )
        self.judge_graph = build_judge_graph(fixed(self._resources), name=f"judge:{spec.name}")
        self.feedback_graph = create_feedback_graph(
            self.model,
            spec=spec,
            embeddings=self.embeddings,
            episodic_store=self.episodic_store,
            semantic_memory=reader,
            memory=self.memory,
            checkpointer=self.checkpointer,
            structured_output=self.structured_output,
        )

    # -- judging -------------------------------------------------------------------------------

    def judge(
        self, *, inputs: Any, outputs: Any = None, expectations: Any = None, **leakage: Unpack[LeakageOptions]
    ) -> Verdict:
        """Judge one example with everything the judge has learned.

        The leakage guard: `metadata["in_memory"]` lists the example's own records when memory holds it (by
        `example_id=` or by content); `exclude_self=True` judges around them, `exclude_ids=[...]` around any.
        """
        example, context = self._guarded(_example(inputs, outputs, expectations), leakage)
        result = self.judge_graph.invoke(example, context=context)
        verdict: Verdict = result["verdict"]
        return verdict

    async def ajudge(
        self, *, inputs: Any, outputs: Any = None, expectations: Any = None, **leakage: Unpack[LeakageOptions]
    ) -> Verdict:
        example, context = self._guarded(_example(inputs, outputs, expectations), leakage)
        result = await self.judge_graph.ainvoke(example, context=context)
        verdict: Verdict = result["verdict"]
        return verdict

    def batch(
        self, examples: Sequence[dict[str, Any]], *, max_concurrency: int | None = None, return_exceptions: bool = False
    ) -> list[Verdict | Exception]:
        """Judge many examples with bounded concurrency; each is a dict of inputs/outputs/expectations (and
        `example_id`, `exclude_ids`, `exclude_self` for the leakage guard, as `judge` takes them).

        With `return_exceptions=True` an example that gets no verdict yields its exception in place,
        so one bad answer does not discard the verdicts already paid for.
        """
        config = RunnableConfig(max_concurrency=max_concurrency or self.max_concurrency)
        results = self.judge_graph.batch(
            batch_inputs(examples),
            config,
            context=self._batch_context(examples),
            return_exceptions=return_exceptions,
        )
        return [result if isinstance(result, Exception) else result["verdict"] for result in results]

    async def abatch(
        self, examples: Sequence[dict[str, Any]], *, max_concurrency: int | None = None, return_exceptions: bool = False
    ) -> list[Verdict | Exception]:
        """`batch` on the event loop: every judgment awaits its memory reads and its model call, so
        `max_concurrency` judgments are in flight in one thread."""
        config = RunnableConfig(max_concurrency=max_concurrency or self.max_concurrency)
        results = await self.judge_graph.abatch(
            batch_inputs(examples),
            config,
            context=self._batch_context(examples),
            return_exceptions=return_exceptions,
        )
        return [result if isinstance(result, Exception) else result["verdict"] for result in results]

    def _guarded(self, example: JudgeInput, leakage: Mapping[str, Any]) -> tuple[JudgeInput, JudgeContext]:
        guarded, exclude_self = guard_input(example, leakage)
        return guarded, guarded_context(self.judge_context, exclude_self)

    def _batch_context(self, examples: Sequence[dict[str, Any]]) -> JudgeContext:
        return guarded_context(self.judge_context, batch_exclude_self(examples))

    # -- alignment and forgetting --------------------------------------------------------------

    def align(
        self,
        feedback: Iterable[Feedback | dict[str, Any]] = (),
        *,
        forget: Iterable[str] = (),
        forget_guidelines: Iterable[str] = (),
        purge: bool = False,
        check_regressions: bool = False,
    ) -> AlignmentReport:
        """Learn from feedback (and forget ids) in one alignment run; re-sending known feedback changes nothing
        and writes no version.

        An alignment that an earlier crash left unfinished is completed first, so no feedback it carried is
        lost. `purge=True` is the privacy deletion of the forgotten feedback (see `forget`).
        `check_regressions=True` judges the seen examples before and after and reports fixed, broken and
        unchanged verdicts in `report["regressions"]` (memalign_graph.regressions; two judgments each).
        """
        if check_regressions:
            items = list(feedback)
            run = lambda: self.align(items, forget=forget, forget_guidelines=forget_guidelines, purge=purge)  # noqa: E731
            return checked_alignment(self, items, run)
        forget_ids = _ids(forget, field="forget")
        request: dict[str, Any] = {
            "feedback": [item.as_input() if isinstance(item, Feedback) else dict(item) for item in feedback],
            "forget": forget_ids,
            "forget_guidelines": _ids(forget_guidelines, field="forget_guidelines"),
        }
        with self.memory.exclusive(self.alignment_context):
            if not purge:
                return self.memory.align(request, context=self.alignment_context)
            # Find every trace first: an id forgotten earlier is only in history, which the purge removes.
            records, citing = self.memory.traces(forget_ids)
            report = self.memory.align({**request, "redistill": sorted(citing)}, context=self.alignment_context)
            delete_review_threads(self.checkpointer, self.spec, records.values())
            self.memory.rewrite()
        return report

    def forget(self, feedback_ids: Iterable[str], *, purge: bool = False) -> AlignmentReport:
        """Delete feedback: its episode, its share of every guideline, and guidelines left with none.

        `purge=True` is the privacy deletion: every guideline that cited the feedback goes (its other
        feedback is distilled again, listed in `guidelines_redistilled`), the feedback graph's review
        threads about it go, and no earlier version keeps it (history starts over from here, so rollback
        does too); the SQLite files are compacted. Purging an id already forgotten redoes all of that, so
        an interrupted purge is finished by running it again.
        """
        return self.align(forget=feedback_ids, purge=purge)

    def forget_guidelines(self, guideline_ids: Iterable[str]) -> AlignmentReport:
        return self.align(forget_guidelines=guideline_ids)

    # -- inspection, consistency and rollback --------------------------------------------------

    def guidelines(self) -> list[Guideline]:
        """The current guidelines, most supported first."""
        return self.memory.guidelines()

    def history(self) -> list[MemoryVersion]:
        """Every version of semantic memory, newest first: one per completed alignment or rollback."""
        return self.memory.history()

    def verify(self) -> ConsistencyReport:
        """Check that both memories agree: one episode of the same content per kept record, no stray
        episodes or provenance, no unfinished alignment."""
        return verify_memory(self.memory, self.episodic_store, self.spec.name, self.alignment_context)

    def repair(self) -> ConsistencyReport:
        """Finish an interrupted alignment, then make episodes match the ledger; returns what was found."""
        return repair_memory(self.memory, self.episodic_store, self.embeddings, self.spec.name, self.alignment_context)

    def rollback(self, checkpoint_id: str) -> AlignmentReport:
        """Make an earlier version of memory current again, episodes included; history keeps both."""
        return self.memory.rollback(checkpoint_id, context=self.alignment_context)

    def export_memory(self, path: str | Path) -> dict[str, int]:
        """Write guidelines, the feedback ledger and every episode (with its vector) to a JSON file."""
        return export_memory(self.memory, self.episodic_store, self.spec, path)

    def import_memory(self, path: str | Path) -> dict[str, int]:
        """Replace this judge's memory by an export of the same judge: lossless, and idempotent."""
        return import_memory(self.memory, self.episodic_store, self.spec, path)

    # -- the judge inside a user's graph -------------------------------------------------------

    def as_node(
        self,
        *,
        inputs_key: str = "inputs",
        outputs_key: str | None = "outputs",
        expectations_key: str | None = None,
        verdict_key: str = "verdict",
    ) -> Runnable[dict[str, Any], dict[str, Any]]:
        """A node for a user's `StateGraph`: reads the mapped keys, writes the verdict under `verdict_key`.

        The judging graph is a real subgraph of the node (`get_graph(xray=True)` draws its steps, a
        parent's `stream(subgraphs=True)` shows each step's update); it runs in this judge's namespace
        and settings, whatever the parent's context is.
        """
        return judge_node(
            self._resources,
            self.judge_context,
            inputs_key=inputs_key,
            outputs_key=outputs_key,
            expectations_key=expectations_key,
            verdict_key=verdict_key,
        )

    # -- the judge in evaluation tools ---------------------------------------------------------

    def as_evaluator(self, *, scores: LabelScores | None = None) -> Evaluator:
        """An openevals / LangSmith evaluator `(*, inputs, outputs, reference_outputs=None)` over this judge.

        It returns a valid `EvaluationResult` dict for every output type: a categorical or pairwise
        label is its `value`, and `scores` (a label -> number map, e.g. `{"yes": 1, "no": 0}`) its score.
        """
        return make_evaluator(self, scores=scores)

    def as_async_evaluator(self, *, scores: LabelScores | None = None) -> AsyncEvaluator:
        """`as_evaluator` for `langsmith.aevaluate`: judgments await the model on the event loop."""
        return make_async_evaluator(self, scores=scores)

    def as_comparative_evaluator(
        self, *, both_orders: bool = False, output_key: str | None = None
    ) -> ComparativeEvaluator:
        """A pairwise judge as a `langsmith.evaluate_comparative` evaluator; `both_orders` keeps only
        verdicts that do not depend on which run is shown first."""
        return make_comparative_evaluator(self, both_orders=both_orders, output_key=output_key)

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


def _example(inputs: Any, outputs: Any = None, expectations: Any = None) -> JudgeInput:
    return JudgeInput(inputs=inputs, outputs=outputs, expectations=expectations)


def _ids(ids: Iterable[str], *, field: str) -> list[str]:
    """Ids from any iterable; one id given as a string is one id, not its characters."""
    return request_ids(ids if isinstance(ids, str) else list(ids), field=field)
