"""The alignment graph: feedback -> memory. No weights change; only the two memories do.

START -> validate -> distill (one Send per batch, in parallel) -> dedupe -> write_memory -> END

The graph's checkpointed state on the judge's memory thread *is* semantic memory: the guidelines and
the ledger of feedback they came from. Nothing is written until `write_memory`, so a run that fails
earlier leaves memory exactly as it was, and a resumed run redoes its writes idempotently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import ValidationError

from memalign_graph.alignment.dedupe import consolidate, merge_drafts
from memalign_graph.alignment.distill import distill_batch, distill_messages
from memalign_graph.alignment.state import AlignmentInput, AlignmentOutput, AlignmentPlan, AlignmentState, DistillTask
from memalign_graph.context import DEFAULT_MAX_CONCURRENCY, AlignmentContext
from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import Feedback, check_text
from memalign_graph.memory.consistency import keeps_episode
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.guidelines import prune_provenance
from memalign_graph.memory.semantic import memory_thread_id
from memalign_graph.records import AlignmentReport, FeedbackRecord, content_hash
from memalign_graph.rendering import retrieval_text
from memalign_graph.resources import ResourceResolver, Resources, fixed
from memalign_graph.spec import JudgeSpec


def create_alignment_graph(
    model: BaseChatModel,
    /,
    *,
    spec: JudgeSpec,
    embeddings: Embeddings,
    episodic_store: EpisodicStore,
    checkpointer: BaseCheckpointSaver | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    name: str | None = None,
) -> CompiledStateGraph:
    """Compile the alignment graph for one judge.

    Run it on the judge's memory thread (`memory_thread_id(judge, namespace)`) with a checkpointer:
    the checkpointed state is the judge's semantic memory. At most `max_concurrency` distillation
    calls run at once (a run's own `max_concurrency` overrides it).
    """
    resources = Resources(spec=spec, model=model, embeddings=embeddings, episodic_store=episodic_store)
    return build_alignment_graph(
        fixed(resources), checkpointer=checkpointer, max_concurrency=max_concurrency, name=name or f"align:{spec.name}"
    )


def build_alignment_graph(
    resolve: ResourceResolver,
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    context_schema: type[AlignmentContext] = AlignmentContext,
    require_memory_thread: bool = False,
    name: str = "align",
) -> CompiledStateGraph:
    """The alignment graph over resources resolved per run (see `create_alignment_graph`).

    `require_memory_thread` refuses runs on any thread but the judge's memory thread, where the
    judging graph looks for semantic memory (the served graph needs it; a user's own graph may not).
    """

    def validate(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Check every record before anything is written, and decide what this run will change."""
        context = runtime.context or AlignmentContext()
        resources = resolve(runtime)
        spec = resources.spec
        _check_identity(state, spec.name, context.namespace)
        if require_memory_thread:
            _check_memory_thread(spec.name, context.namespace)
        resources.episodic_store.check()  # an unreachable store fails here, before any LLM call or write
        records = dict(state.get("records") or {})
        incoming = _validated_records(spec, state.get("feedback") or [], records)
        forget_requested = set(state.get("forget") or [])
        unchanged = sorted(
            record["id"]
            for record in incoming
            if record["id"] in records and records[record["id"]]["content_hash"] == record["content_hash"]
        )
        incoming = [
            record for record in incoming if record["id"] not in forget_requested and record["id"] not in unchanged
        ]
        replaced = {record["id"] for record in incoming if record["id"] in records}
        leaving = (forget_requested & records.keys()) | replaced
        guidelines = prune_provenance(state.get("guidelines") or {}, leaving)
        for guideline_key in state.get("forget_guidelines") or []:
            guidelines.pop(guideline_key, None)
        pending = [
            record for feedback_id, record in records.items() if not record["distilled"] and feedback_id not in leaving
        ]
        plan = AlignmentPlan(
            upsert=incoming,
            delete=sorted(leaving),
            distill=[*pending, *incoming],
            unchanged=unchanged,
            guidelines=guidelines,
        )
        return {
            "judge": spec.name,
            "namespace": context.namespace,
            "plan": plan,
            "feedback": [],
            "forget": [],
            "forget_guidelines": [],
            "drafts": None,
            "failures": None,
        }

    def fan_out(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> list[Send] | str:
        """One distillation call per batch of feedback; LangGraph runs them in parallel."""
        context = runtime.context or AlignmentContext()
        to_distill = state["plan"]["distill"]
        if not to_distill or not context.distill:
            return "dedupe"
        current = [
            {key: value for key, value in guideline.items() if key != "embedding"}
            for guideline in state["plan"]["guidelines"].values()
        ]
        size = max(1, context.batch_size)
        return [
            Send("distill", DistillTask(batch=to_distill[start : start + size], guidelines=current))
            for start in range(0, len(to_distill), size)
        ]

    def distill(task: DistillTask, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Turn one batch of feedback into draft guidelines; a batch that keeps failing stays pending."""
        context = runtime.context or AlignmentContext()
        resources = resolve(runtime)
        batch_ids = [record["id"] for record in task["batch"]]
        messages = distill_messages(
            resources.spec, task["batch"], task["guidelines"], field_token_budget=context.field_token_budget
        )
        outcome = distill_batch(resources.model, messages, batch_ids, attempts=context.max_distill_attempts)
        return {"drafts": outcome} if isinstance(outcome, list) else {"failures": [outcome]}

    def dedupe(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Merge drafts that repeat a guideline, then keep the guidelines within their token budget."""
        context = runtime.context or AlignmentContext()
        plan = state["plan"]
        resources = resolve(runtime)
        guidelines = merge_drafts(
            resources.model,
            resources.embeddings,
            plan["guidelines"],
            state.get("drafts") or [],
            merge_at=context.merge_similarity,
            close_call_at=context.close_call_similarity,
            max_concurrency=get_config().get("max_concurrency") or max_concurrency,
        )
        if state.get("drafts"):
            guidelines = consolidate(
                resources.model, resources.embeddings, guidelines, token_budget=context.guideline_token_budget
            )
        return {"plan": {**plan, "guidelines": guidelines}}

    def write_memory(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Write episodes to the store, then semantic memory to the checkpoint; both are idempotent."""
        context = runtime.context or AlignmentContext()
        plan = state["plan"]
        failed = {feedback_id for failure in state.get("failures") or [] for feedback_id in failure["feedback_ids"]}
        resources = resolve(runtime)
        judge = resources.spec.name
        resources.episodic_store.delete(judge, context.namespace, plan["delete"])
        write_episodes(
            resources.episodic_store, resources.embeddings, judge, context.namespace, plan["upsert"], context
        )
        records = {key: value for key, value in (state.get("records") or {}).items() if key not in plan["delete"]}
        for record in plan["distill"]:
            records[record["id"]] = {**record, "distilled": context.distill and record["id"] not in failed}
        old = state.get("guidelines") or {}
        new = plan["guidelines"]
        report = AlignmentReport(
            added=sorted(r["id"] for r in plan["upsert"] if r["id"] not in plan["delete"]),
            updated=sorted(r["id"] for r in plan["upsert"] if r["id"] in plan["delete"]),
            unchanged=plan["unchanged"],
            forgotten=sorted(set(plan["delete"]) - {r["id"] for r in plan["upsert"]}),
            distilled=sorted(r["id"] for r in plan["distill"] if context.distill and r["id"] not in failed),
            pending=sorted(failed),
            failed_batches=list(state.get("failures") or []),
            guidelines_added=sorted(set(new) - set(old)),
            guidelines_merged=sorted(
                key
                for key in set(new) & set(old)
                if new[key]["feedback_ids"] != old[key]["feedback_ids"] or new[key]["text"] != old[key]["text"]
            ),
            guidelines_removed=sorted(set(old) - set(new)),
        )
        return {"records": records, "guidelines": new, "report": report}

    builder = StateGraph(
        AlignmentState, context_schema=context_schema, input_schema=AlignmentInput, output_schema=AlignmentOutput
    )
    builder.add_node("validate", validate)
    builder.add_node("distill", distill)
    builder.add_node("dedupe", dedupe)
    builder.add_node("write_memory", write_memory)
    builder.add_edge(START, "validate")
    builder.add_conditional_edges("validate", fan_out, ["distill", "dedupe"])
    builder.add_edge("distill", "dedupe")
    builder.add_edge("dedupe", "write_memory")
    builder.add_edge("write_memory", END)
    graph = builder.compile(checkpointer=checkpointer, name=name)
    return graph.with_config(max_concurrency=max_concurrency)


def write_episodes(
    store: EpisodicStore,
    embeddings: Embeddings,
    judge: str,
    namespace: str,
    records: list[FeedbackRecord],
    context: AlignmentContext,
) -> None:
    """Embed and upsert the records that the episode policy keeps; only these records are embedded."""
    kept = [record for record in records if keeps_episode(record, context)]
    if not kept:
        return
    texts = [retrieval_text(record, max_tokens=context.field_token_budget) for record in kept]
    store.upsert(judge, namespace, kept, texts, embeddings.embed_documents(texts))


def _check_identity(state: AlignmentState, judge: str, namespace: str) -> None:
    """A memory thread belongs to one judge and namespace; refuse to mix another one's feedback in."""
    for key, expected in (("judge", judge), ("namespace", namespace)):
        found = state.get(key)
        if found and found != expected:
            raise InvalidValueError(
                f"{key}: this memory thread belongs to {key} {found!r}, not {expected!r}; "
                f"run the alignment on thread memory_thread_id({judge!r}, {namespace!r})."
            )


def _check_memory_thread(judge: str, namespace: str) -> None:
    expected = memory_thread_id(judge, namespace)
    found = get_config().get("configurable", {}).get("thread_id")
    if str(found) != expected:
        raise InvalidValueError(
            f"thread_id: judge {judge!r} in namespace {namespace!r} keeps its memory on thread {expected}; "
            f"run the alignment there (this run is on {found}), so judging finds what it learns."
        )


def _validated_records(spec: JudgeSpec, feedback: list[Any], known: dict[str, FeedbackRecord]) -> list[FeedbackRecord]:
    """Every incoming feedback as a ledger record, or an error naming the record and the field."""
    now = datetime.now(UTC).isoformat()
    records: dict[str, FeedbackRecord] = {}
    first_index: dict[str, int] = {}
    for index, item in enumerate(feedback):
        where = f"feedback[{index}]"
        try:
            parsed = item if isinstance(item, Feedback) else Feedback.model_validate(item)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in issue['loc']) or 'record'}: {issue['msg']}"
                for issue in error.errors()
            )
            raise InvalidValueError(f"{where}: {problems}") from error
        fields = spec.validate_record(parsed.as_input(), where=where)
        check_text(parsed.rationale, field=f"{where}.rationale")
        check_text(parsed.id, field=f"{where}.id")
        value = None if parsed.value is None else spec.output.validate_value(parsed.value, field=f"{where}.value")
        verdict = (
            None
            if parsed.judge_verdict is None
            else spec.output.validate_value(parsed.judge_verdict, field=f"{where}.judge_verdict")
        )
        feedback_id = parsed.feedback_id
        previous = known.get(feedback_id)
        record = FeedbackRecord(
            id=feedback_id,
            inputs=fields.get("inputs"),
            outputs=fields.get("outputs"),
            expectations=fields.get("expectations"),
            value=value,
            rationale=(parsed.rationale or "").strip() or None,
            judge_verdict=verdict,
            judge_was_wrong=None if value is None or verdict is None else value != verdict,
            content_hash="",
            created_at=previous["created_at"] if previous else now,
            updated_at=now,
            distilled=False,
        )
        record["content_hash"] = content_hash(record)
        if feedback_id in records:
            if records[feedback_id]["content_hash"] != record["content_hash"]:
                raise InvalidValueError(
                    f"{where}.id: {feedback_id!r} is also feedback[{first_index[feedback_id]}] with different "
                    "content; keep one of them, or give them different ids."
                )
            continue
        records[feedback_id] = record
        first_index[feedback_id] = index
    return list(records.values())
