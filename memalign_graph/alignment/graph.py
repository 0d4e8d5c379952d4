"""The alignment graph: feedback -> memory. No weights change; only the two memories do.

START -> validate -> distill (one Send per batch, in parallel; each draft checked against the feedback it
cites) -> dedupe -> write_memory -> END

The graph's checkpointed state on the judge's memory thread *is* semantic memory: the guidelines and
the ledger of feedback they came from (see `memalign_graph.memory.ledger`). This module only wires the
steps; each node resolves its resources and calls a named function.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langgraph._internal._constants import CONFIG_KEY_READ
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from memalign_graph.alignment.dedupe import consolidate, merge_drafts
from memalign_graph.alignment.distill import distill_batch, distill_messages
from memalign_graph.alignment.evidence import check_evidence
from memalign_graph.alignment.plan import Planned, plan_alignment, plan_restore
from memalign_graph.alignment.state import (
    AlignmentInput,
    AlignmentOutput,
    AlignmentState,
    DistillTask,
    planned_guidelines,
)
from memalign_graph.alignment.write import memory_updates, sync_episodes
from memalign_graph.context import DEFAULT_MAX_CONCURRENCY, AlignmentContext
from memalign_graph.errors import ConfigurationError, InvalidValueError
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.guidelines import rank_guidelines
from memalign_graph.memory.ledger import (
    Changes,
    changes_between,
    memory_thread_id,
    pack_vector,
    thread_config,
    values_at,
)
from memalign_graph.memory.reader import run_checkpointer
from memalign_graph.records import BatchOutcome
from memalign_graph.rendering import select_guidelines
from memalign_graph.resources import ResourceResolver, Resources, fixed, namespace_for
from memalign_graph.spec import JudgeSpec
from memalign_graph.structured_output import StructuredOutput

AlignmentGraph = CompiledStateGraph[AlignmentState, AlignmentContext, AlignmentInput, AlignmentOutput]


def create_alignment_graph(
    model: BaseChatModel,
    /,
    *,
    spec: JudgeSpec,
    embeddings: Embeddings,
    episodic_store: EpisodicStore,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    namespace: str | None = None,
    structured_output: StructuredOutput = "auto",
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    name: str | None = None,
) -> AlignmentGraph:
    """Compile the alignment graph for one judge.

    Run it on the judge's memory thread (`memory_thread_id(judge, namespace)`) with a checkpointer:
    the checkpointed state is the judge's semantic memory. With `namespace`, every run is bound to it
    (a run's context naming another is refused). `structured_output` is how the model is asked for JSON
    (`auto` adapts to what its server accepts). At most `max_concurrency` distillation calls run at
    once (a run's own `max_concurrency` overrides it).
    """
    resources = Resources(
        spec=spec,
        model=model,
        embeddings=embeddings,
        episodic_store=episodic_store,
        namespace=namespace,
        structured_output=structured_output,
    )
    return build_alignment_graph(
        fixed(resources), checkpointer=checkpointer, max_concurrency=max_concurrency, name=name or f"align:{spec.name}"
    )


def build_alignment_graph(
    resolve: ResourceResolver,
    *,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    context_schema: type[AlignmentContext] = AlignmentContext,
    require_memory_thread: bool = False,
    name: str = "align",
) -> AlignmentGraph:
    """The alignment graph over resources resolved per run (see `create_alignment_graph`).

    `require_memory_thread` refuses runs on any thread but the judge's memory thread, where the
    judging graph looks for semantic memory (the served graph needs it; a user's own graph may not).
    """

    def validate(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Check every record before anything is written, and decide what this run will change."""
        resources = resolve(runtime)
        namespace = namespace_for(resources, runtime.context)
        spec = resources.spec
        if require_memory_thread:
            _check_memory_thread(spec.name, namespace)
        resources.episodic_store.check()  # an unreachable store fails here, before any LLM call or write
        planned = _plan(state, spec, namespace)
        vectors = {"guideline_vectors": planned.vectors} if planned.vectors is not None else {}
        return {
            **vectors,
            "judge": spec.name,
            "namespace": namespace,
            "plan": planned.plan,
            "records": planned.records,
            "outstanding": planned.outstanding,
            "feedback": [],
            "forget": [],
            "forget_guidelines": [],
            "redistill": [],
            "restore": None,
            "drafts": None,
            "batches": None,
            "failures": None,
            "episodes_synced": None,
        }

    def fan_out(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> list[Send] | str:
        """One distillation call per batch of feedback; LangGraph runs them in parallel."""
        context = runtime.context or AlignmentContext()
        records = state.get("records") or {}
        to_distill = [key for key in state["plan"]["distill"] if key in records]
        if not to_distill or not context.distill:
            return "dedupe"
        size = max(1, context.batch_size)
        batches = [to_distill[start : start + size] for start in range(0, len(to_distill), size)]
        sends = [Send("distill", DistillTask(index=n, batch=batch)) for n, batch in enumerate(batches, start=1)]
        # Episodes do not depend on what distillation says: they are embedded and written meanwhile.
        outstanding = state.get("outstanding")
        if outstanding and outstanding["episodes"]:
            sends.append(Send("write_episodes", {}))
        return sends

    def distill(task: DistillTask, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Turn one batch of feedback into draft guidelines; a batch that keeps failing stays pending.

        The distiller sees the best-supported guidelines within the judging budget, as a judgment does.
        """
        context = runtime.context or AlignmentContext()
        resources = resolve(runtime)
        state = run_state("records", "guidelines", "plan")
        batch = [state["records"][key] for key in task["batch"]]
        shown = select_guidelines(rank_guidelines(planned_guidelines(state).values()), context.guideline_token_budget)
        messages = distill_messages(resources.spec, batch, shown, field_token_budget=context.field_token_budget)
        outcome = distill_batch(resources.calls, messages, task["batch"], attempts=context.max_distill_attempts)
        if isinstance(outcome, tuple) and context.check_evidence and outcome[0]:
            checked = check_evidence(
                resources.calls,
                resources.spec,
                outcome[0],
                state["records"],
                task["batch"],
                field_token_budget=context.field_token_budget,
                attempts=context.max_distill_attempts,
            )
            outcome = (checked[0], [*outcome[1], *checked[1]]) if isinstance(checked, tuple) else checked
        if not isinstance(outcome, tuple):
            return {"failures": [outcome]}
        drafts, dropped = outcome
        proposed = BatchOutcome(
            batch=task["index"],
            feedback_ids=task["batch"],
            proposed=len(drafts) + len(dropped),
            kept=0,
            merged=0,
            dropped=dropped,
        )
        return {"drafts": [{**draft, "batch": task["index"]} for draft in drafts], "batches": [proposed]}

    def dedupe(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Merge drafts that repeat a guideline, then keep the guidelines within their token budget."""
        context = runtime.context or AlignmentContext()
        plan, drafts = state["plan"], state.get("drafts") or []
        if not drafts:
            return {}
        resources = resolve(runtime)
        known = state.get("guidelines") or {}
        guidelines, fresh, kept = merge_drafts(
            resources.calls,
            resources.embeddings,
            planned_guidelines(state),
            state.get("guideline_vectors") or {},
            drafts,
            merge_at=context.merge_similarity,
            close_call_at=context.close_call_similarity,
            max_concurrency=get_config().get("max_concurrency") or max_concurrency,
        )
        guidelines, rewritten = consolidate(
            resources.calls, resources.embeddings, guidelines, token_budget=context.guideline_token_budget
        )
        # Vectors are dedupe's index, not memory's content: those of guidelines this run adds go straight in
        # (a guideline that does not stay has its vector removed by write_memory).
        vectors = {key: vector for key, vector in {**fresh, **rewritten}.items() if key in guidelines}
        kept_by_batch: dict[str, int] = {}
        for draft, stays in zip(drafts, kept, strict=True):
            kept_by_batch[str(draft.get("batch", 0))] = kept_by_batch.get(str(draft.get("batch", 0)), 0) + stays
        return {
            "plan": {**plan, "guideline_changes": changes_between(known, guidelines), "kept": kept_by_batch},
            "guideline_vectors": Changes(put={key: pack_vector(vector) for key, vector in vectors.items()}),
        }

    def sync_outstanding_episodes(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> None:
        outstanding = state.get("outstanding")
        if not outstanding or not outstanding["episodes"]:
            return
        resources = resolve(runtime)
        sync_episodes(
            resources.episodic_store,
            resources.embeddings,
            resources.spec.name,
            namespace_for(resources, runtime.context),
            state.get("records") or {},
            outstanding["episodes"],
            runtime.context or AlignmentContext(),
        )

    def write_episodes(_: dict[str, Any], runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Make episodic memory match the ledger while distillation runs (the ledger is written after)."""
        sync_outstanding_episodes(run_state("records", "outstanding"), runtime)
        return {"episodes_synced": True}

    def write_memory(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Write episodes to the store unless this run already did, then semantic memory to the checkpoint;
        both are idempotent."""
        context = runtime.context or AlignmentContext()
        if not state.get("episodes_synced"):
            sync_outstanding_episodes(state, runtime)
        return memory_updates(
            state, state["plan"], list(state.get("failures") or []), list(state.get("batches") or []), context
        )

    builder = StateGraph(
        AlignmentState, context_schema=context_schema, input_schema=AlignmentInput, output_schema=AlignmentOutput
    )
    builder.add_node("validate", validate)
    builder.add_node("distill", distill)  # type: ignore[call-overload]  # a Send target: its input is DistillTask
    builder.add_node("write_episodes", write_episodes)  # type: ignore[call-overload]  # a Send target
    builder.add_node("dedupe", dedupe)
    builder.add_node("write_memory", write_memory)
    builder.add_edge(START, "validate")
    builder.add_conditional_edges("validate", fan_out, ["distill", "write_episodes", "dedupe"])
    builder.add_edge("distill", "dedupe")
    builder.add_edge("write_episodes", "dedupe")
    builder.add_edge("dedupe", "write_memory")
    builder.add_edge("write_memory", END)
    graph = builder.compile(checkpointer=checkpointer, name=name)
    return graph.with_config(max_concurrency=max_concurrency)


def run_state(*channels: str) -> AlignmentState:
    """The run's state as a task of the current step sees it, read from LangGraph's channels in memory.

    A `Send` task gets only its payload; reading the feedback here keeps it out of the payloads that
    every checkpoint would copy. Through `CONFIG_KEY_READ`, internal to LangGraph 1.2 (hence the pin).
    """
    read = get_config().get("configurable", {}).get(CONFIG_KEY_READ)
    if read is None:
        raise ConfigurationError("distill: run the alignment graph through LangGraph (its state is read per batch).")
    state: AlignmentState = read(list(channels))
    return state


def _plan(state: AlignmentState, spec: JudgeSpec, namespace: str) -> Planned:
    now = datetime.now(UTC).isoformat()
    checkpoint_id = state.get("restore")
    if not checkpoint_id:
        return plan_alignment(state, state, spec, namespace, now=now)
    saver = run_checkpointer()
    thread_id = get_config().get("configurable", {}).get("thread_id")
    if saver is None or thread_id is None:
        raise ConfigurationError("restore: an earlier version is read through the run's checkpointer; run on a thread.")
    found = saver.get_tuple(thread_config(str(thread_id), checkpoint_id))
    if found is None or "summary" not in found.checkpoint["channel_values"]:
        raise InvalidValueError(f"restore: {checkpoint_id!r} is not a version of this memory thread; see its history.")
    version = values_at(saver, found, ("guidelines", "guideline_vectors", "records", "outstanding"))
    return plan_restore(state, version, checkpoint_id)


def _check_memory_thread(judge: str, namespace: str) -> None:
    expected = memory_thread_id(judge, namespace)
    found = get_config().get("configurable", {}).get("thread_id")
    if str(found) != expected:
        raise InvalidValueError(
            f"thread_id: judge {judge!r} in namespace {namespace!r} keeps its memory on thread {expected}; "
            f"run the alignment there (this run is on {found}), so judging finds what it learns."
        )
