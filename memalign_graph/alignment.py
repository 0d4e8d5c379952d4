"""The alignment graph: feedback -> memory. No weights change; only the two memories do.

START -> validate -> distill (one Send per batch, in parallel) -> dedupe -> write_memory -> END

The graph's checkpointed state on the judge's memory thread *is* semantic memory: the guidelines and
the ledger of feedback they came from. Nothing is written until `write_memory`, so a run that fails
earlier leaves memory exactly as it was, and a resumed run redoes its writes idempotently.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import ValidationError

from memalign_graph.episodic import EpisodicStore
from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import Feedback, content_hash
from memalign_graph.guidelines import guideline_id, prune_provenance
from memalign_graph.prompts import (
    CLOSE_CALL_SYSTEM_PROMPT,
    CLOSE_CALL_USER_PROMPT,
    DATA_NOTICE,
    DISTILL_SYSTEM_PROMPT,
    DISTILL_USER_PROMPT,
)
from memalign_graph.rendering import approximate_tokens, retrieval_text, truncate
from memalign_graph.spec import JudgeSpec
from memalign_graph.state import (
    AlignmentContext,
    AlignmentInput,
    AlignmentOutput,
    AlignmentPlan,
    AlignmentReport,
    AlignmentState,
    BatchFailure,
    DistillTask,
    DraftGuideline,
    FeedbackRecord,
    Guideline,
)
from memalign_graph.structured import StructuredOutputError, invoke_structured
from memalign_graph.working_memory import render_feedback, render_guidelines

MAX_GUIDELINE_TOKENS = 120

DISTILL_SCHEMA: dict[str, Any] = {
    "title": "distilled_guidelines",
    "description": "New general guidelines distilled from the feedback.",
    "type": "object",
    "properties": {
        "guidelines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "The guideline, one or two sentences."},
                    "feedback_ids": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Ids of the feedback items this guideline comes from.",
                    },
                },
                "required": ["text", "feedback_ids"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["guidelines"],
    "additionalProperties": False,
}

CLOSE_CALL_SCHEMA: dict[str, Any] = {
    "title": "guideline_comparison",
    "description": "How a new guideline relates to an existing one.",
    "type": "object",
    "properties": {
        "relation": {"type": "string", "enum": ["same", "conflict", "different"]},
        "merged": {"type": "string", "description": "The single guideline to keep, for 'same' or 'conflict'."},
    },
    "required": ["relation", "merged"],
    "additionalProperties": False,
}


def create_alignment_graph(
    model: BaseChatModel,
    /,
    *,
    spec: JudgeSpec,
    embeddings: Embeddings,
    episodic_store: EpisodicStore,
    checkpointer: BaseCheckpointSaver | None = None,
    name: str | None = None,
) -> CompiledStateGraph:
    """Compile the alignment graph for one judge.

    Run it on the judge's memory thread (`memory_thread_id(judge, namespace)`) with a checkpointer:
    the checkpointed state is the judge's semantic memory. Bound the parallel distillation calls with
    the run's `max_concurrency`.
    """

    def validate(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Check every record before anything is written, and decide what this run will change."""
        context = runtime.context or AlignmentContext()
        _check_identity(state, spec.name, context.namespace)
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
        if not to_distill:
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
        batch = task["batch"]
        ids = [record["id"] for record in batch]
        messages = [
            SystemMessage(
                DISTILL_SYSTEM_PROMPT.format(
                    judge=spec.name,
                    instructions=spec.instructions,
                    value_description=spec.output.describe(),
                    data_notice=DATA_NOTICE,
                )
            ),
            HumanMessage(
                DISTILL_USER_PROMPT.format(
                    guidelines=render_guidelines(task["guidelines"]),
                    feedback="\n\n".join(
                        render_feedback(record, max_tokens_per_field=context.field_token_budget) for record in batch
                    ),
                )
            ),
        ]
        last_error = ""
        for attempt in range(max(1, context.max_distill_attempts)):
            if attempt:
                time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
            try:
                answer, _raw = invoke_structured(model, DISTILL_SCHEMA, messages)
                return {"drafts": _drafts(answer, ids)}
            except Exception as error:  # noqa: BLE001 - any failure keeps the batch pending
                last_error = f"{type(error).__name__}: {error}"
        return {"failures": [BatchFailure(feedback_ids=ids, error=last_error)]}

    def dedupe(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Merge drafts that say what a guideline already says: embeddings first, the LLM for close calls."""
        context = runtime.context or AlignmentContext()
        plan = state["plan"]
        merged = _merge_drafts(
            model,
            embeddings,
            plan["guidelines"],
            state.get("drafts") or [],
            merge_at=context.merge_similarity,
            close_call_at=context.close_call_similarity,
        )
        return {"plan": {**plan, "guidelines": merged}}

    def write_memory(state: AlignmentState, runtime: Runtime[AlignmentContext]) -> dict[str, Any]:
        """Write episodes to the store, then semantic memory to the checkpoint; both are idempotent."""
        context = runtime.context or AlignmentContext()
        plan = state["plan"]
        failed = {feedback_id for failure in state.get("failures") or [] for feedback_id in failure["feedback_ids"]}
        episodic_store.delete(spec.name, context.namespace, plan["delete"])
        write_episodes(episodic_store, embeddings, spec.name, context.namespace, plan["upsert"], context)
        records = {key: value for key, value in (state.get("records") or {}).items() if key not in plan["delete"]}
        for record in plan["distill"]:
            records[record["id"]] = {**record, "distilled": record["id"] not in failed}
        old = state.get("guidelines") or {}
        new = plan["guidelines"]
        report = AlignmentReport(
            added=sorted(r["id"] for r in plan["upsert"] if r["id"] not in plan["delete"]),
            updated=sorted(r["id"] for r in plan["upsert"] if r["id"] in plan["delete"]),
            unchanged=plan["unchanged"],
            forgotten=sorted(set(plan["delete"]) - {r["id"] for r in plan["upsert"]}),
            distilled=sorted(r["id"] for r in plan["distill"] if r["id"] not in failed),
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
        AlignmentState, context_schema=AlignmentContext, input_schema=AlignmentInput, output_schema=AlignmentOutput
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
    return builder.compile(checkpointer=checkpointer, name=name or f"align:{spec.name}")


def write_episodes(
    store: EpisodicStore,
    embeddings: Embeddings,
    judge: str,
    namespace: str,
    records: list[FeedbackRecord],
    context: AlignmentContext,
) -> None:
    """Embed and upsert the records that the episode policy keeps; only these records are embedded."""
    kept = [record for record in records if context.keep_episodes == "all" or record["judge_was_wrong"] is not False]
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


def _drafts(answer: dict[str, Any], batch_ids: list[str]) -> list[DraftGuideline]:
    """Clean one distillation answer: non-empty texts, provenance limited to the batch's ids."""
    items = answer.get("guidelines")
    if not isinstance(items, list):
        raise StructuredOutputError("'guidelines' is not a list", str(answer))
    allowed = set(batch_ids)
    drafts: list[DraftGuideline] = []
    for item in items:
        if not isinstance(item, dict):
            raise StructuredOutputError("a guideline is not an object", str(answer))
        text = " ".join(str(item.get("text") or "").split())
        if not text:
            continue
        cited = [str(feedback_id) for feedback_id in item.get("feedback_ids") or [] if str(feedback_id) in allowed]
        # A guideline that cites nothing usable is credited to its whole batch, so forgetting
        # the batch's feedback can still remove it.
        drafts.append(
            DraftGuideline(text=truncate(text, MAX_GUIDELINE_TOKENS), feedback_ids=sorted(set(cited or batch_ids)))
        )
    return drafts


def _merge_drafts(
    model: BaseChatModel,
    embeddings: Embeddings,
    guidelines: dict[str, Guideline],
    drafts: list[DraftGuideline],
    *,
    merge_at: float,
    close_call_at: float,
) -> dict[str, Guideline]:
    merged = {key: dict(guideline) for key, guideline in guidelines.items()}
    if not drafts:
        return merged  # type: ignore[return-value]
    now = datetime.now(UTC).isoformat()
    vectors = embeddings.embed_documents([draft["text"] for draft in drafts])
    for draft, vector in zip(drafts, vectors, strict=True):
        unit = _unit(vector)
        best_key, best_similarity = None, -1.0
        for key, guideline in merged.items():
            similarity = float(np.dot(unit, _unit(guideline["embedding"])))
            if similarity > best_similarity:
                best_key, best_similarity = key, similarity
        if best_key is not None and best_similarity >= close_call_at:
            target = merged[best_key]
            relation, text = "same", target["text"]
            if best_similarity < merge_at:
                relation, text = _close_call(model, target["text"], draft["text"])
            if relation in ("same", "conflict"):
                target["feedback_ids"] = sorted(set(target["feedback_ids"]) | set(draft["feedback_ids"]))
                target["updated_at"] = now
                if text and text != target["text"]:
                    target["text"] = text
                    target["embedding"] = list(embeddings.embed_query(text))
                continue
        key = guideline_id(draft["text"])
        if key in merged:
            merged[key]["feedback_ids"] = sorted(set(merged[key]["feedback_ids"]) | set(draft["feedback_ids"]))
            continue
        merged[key] = Guideline(
            id=key,
            text=draft["text"],
            feedback_ids=list(draft["feedback_ids"]),
            created_at=now,
            updated_at=now,
            embedding=list(vector),
        )
    return merged  # type: ignore[return-value]


def _close_call(model: BaseChatModel, existing: str, new: str) -> tuple[str, str]:
    """Ask the model whether two similar guidelines are the same, in conflict, or different.

    A failed call keeps both guidelines (relation 'different'): nothing an expert said is lost.
    """
    messages = [
        SystemMessage(CLOSE_CALL_SYSTEM_PROMPT),
        HumanMessage(CLOSE_CALL_USER_PROMPT.format(existing=existing, new=new)),
    ]
    try:
        answer, _raw = invoke_structured(model, CLOSE_CALL_SCHEMA, messages)
    except Exception:  # noqa: BLE001
        return "different", ""
    relation = answer.get("relation")
    merged = " ".join(str(answer.get("merged") or "").split())
    if relation not in ("same", "conflict", "different"):
        return "different", ""
    if relation != "different" and approximate_tokens(merged) > MAX_GUIDELINE_TOKENS:
        merged = truncate(merged, MAX_GUIDELINE_TOKENS)
    return relation, merged


def _unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array
