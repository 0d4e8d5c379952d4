"""The feedback graph: judge, ask an expert, learn from the answer, judge again.

START -> judge -> review (interrupt) -> align -> rejudge -> END; accepting the verdict ends the run
after review unless confirmed verdicts are kept as episodes. The interrupt carries the verdict and the
memory it used; the thread is checkpointed, so the expert may answer after a process restart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal, TypedDict

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict, model_validator

from memalign_graph.alignment.graph import AlignmentGraph, build_alignment_graph
from memalign_graph.alignment.memory import open_memory_thread
from memalign_graph.context import FeedbackContext
from memalign_graph.errors import ConfigurationError, InvalidValueError
from memalign_graph.feedback import Feedback
from memalign_graph.judging.graph import build_judge_graph
from memalign_graph.judging.state import JudgeInput, MemoryUsed
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.reader import SemanticMemoryReader, run_checkpointer
from memalign_graph.memory.savers import thread_ids
from memalign_graph.memory.semantic import MemoryThread
from memalign_graph.records import AlignmentReport, FeedbackRecord, Verdict
from memalign_graph.resources import ResourceResolver, Resources, fixed, namespace_for
from memalign_graph.spec import JudgeSpec
from memalign_graph.structured_output import StructuredOutput


class ExpertReview(BaseModel):
    """The expert's answer to a verdict: accept it, or correct it with a value and/or a rationale."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "correct"]
    value: Any = None
    rationale: str | None = None

    @model_validator(mode="after")
    def _a_correction_says_something(self) -> ExpertReview:
        if self.action == "correct" and self.value is None and not (self.rationale or "").strip():
            raise ValueError("a correction needs value (the right verdict), rationale (why), or both")
        return self


@lru_cache(maxsize=64)
def review_schema(spec: JudgeSpec) -> type[ExpertReview]:
    """`ExpertReview` that also holds a corrected value to the judge's output type (validated on resume)."""

    class JudgeExpertReview(ExpertReview):
        @model_validator(mode="after")
        def _value_fits_the_judge(self) -> JudgeExpertReview:
            if self.value is not None:
                self.value = spec.output.validate_value(self.value, field="value")
            return self

    JudgeExpertReview.__name__ = "ExpertReview"
    return JudgeExpertReview


class FeedbackInput(TypedDict, total=False):
    inputs: Any
    outputs: Any
    expectations: Any


class FeedbackState(FeedbackInput, total=False):
    verdict: Verdict
    memory_used: MemoryUsed
    review: dict[str, Any]
    alignment: AlignmentReport | None
    updated_verdict: Verdict | None


class FeedbackOutput(TypedDict, total=False):
    verdict: Verdict
    review: dict[str, Any]
    alignment: AlignmentReport | None
    updated_verdict: Verdict | None


FeedbackGraph = CompiledStateGraph[FeedbackState, FeedbackContext, FeedbackInput, FeedbackOutput]


def create_feedback_graph(
    model: BaseChatModel,
    /,
    *,
    spec: JudgeSpec,
    embeddings: Embeddings,
    episodic_store: EpisodicStore,
    semantic_memory: SemanticMemoryReader | None = None,
    memory: MemoryThread | None = None,
    memory_checkpointer: BaseCheckpointSaver[Any] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    namespace: str | None = None,
    structured_output: StructuredOutput = "auto",
    name: str | None = None,
) -> FeedbackGraph:
    """Compile the feedback graph for one judge.

    `checkpointer` keeps this graph's own threads (interrupts need one). Corrections are aligned through
    `memory` (the judge's `MemoryThread`, as `MemAlignJudge` passes its own), else through an owner of
    the judge's memory thread in `memory_checkpointer` (default: the checkpointer of the run itself).
    With `namespace` (or `memory`), every run is bound to that namespace.
    """
    resources = Resources(
        spec=spec,
        model=model,
        embeddings=embeddings,
        episodic_store=episodic_store,
        semantic_memory=semantic_memory,
        namespace=memory.namespace if memory is not None else namespace,
        structured_output=structured_output,
    )
    return build_feedback_graph(
        fixed(resources),
        memory=memory,
        memory_checkpointer=memory_checkpointer,
        checkpointer=checkpointer,
        name=name or f"feedback:{spec.name}",
    )


def build_feedback_graph(
    resolve: ResourceResolver,
    *,
    memory: MemoryThread | None = None,
    memory_checkpointer: BaseCheckpointSaver[Any] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    context_schema: type[FeedbackContext] = FeedbackContext,
    name: str = "feedback",
) -> FeedbackGraph:
    """The feedback graph over resources resolved per run (see `create_feedback_graph`)."""
    judge_graph = build_judge_graph(resolve, context_schema=context_schema, name="judge")
    owners = _Owners(resolve, memory, memory_checkpointer, context_schema)

    def review(state: FeedbackState, runtime: Runtime[FeedbackContext]) -> dict[str, Any]:
        """Show the expert the verdict and the memory behind it; wait for accept or correct."""
        spec = resolve(runtime).spec
        answer = interrupt(
            {
                "question": f"Do you agree with judge {spec.name!r}? Accept the verdict, or correct it.",
                "verdict": state["verdict"],
                "memory_used": state.get("memory_used"),
                "expected": {"action": "accept | correct", "value": spec.output.describe(), "rationale": "why"},
            },
            response_schema=review_schema(spec),
        )
        return {"review": answer.model_dump()}

    def after_review(state: FeedbackState, runtime: Runtime[FeedbackContext]) -> str:
        context = runtime.context or FeedbackContext()
        if state["review"]["action"] == "accept" and not context.keep_confirmed_verdicts:
            return END
        return "align"

    def align(state: FeedbackState, runtime: Runtime[FeedbackContext]) -> dict[str, Any]:
        """Align the expert's answer through the owner of the judge's memory (idempotent on resume)."""
        context = runtime.context or FeedbackContext()
        resources = resolve(runtime)
        owner = owners.get(resources, namespace_for(resources, context))
        report = owner.align({"feedback": [expert_feedback(state).as_input()]}, context=context)
        return {"alignment": report}

    def rejudge(state: FeedbackState, runtime: Runtime[FeedbackContext]) -> dict[str, Any]:
        """Judge the example again with the memory the correction just changed."""
        example = JudgeInput(
            inputs=state["inputs"], outputs=state.get("outputs"), expectations=state.get("expectations")
        )
        result = judge_graph.invoke(example, context=runtime.context)
        return {"updated_verdict": result["verdict"]}

    builder = StateGraph(
        FeedbackState, context_schema=context_schema, input_schema=FeedbackInput, output_schema=FeedbackOutput
    )
    builder.add_node("judge", judge_graph)
    builder.add_node("review", review)
    builder.add_node("align", align)
    builder.add_node("rejudge", rejudge)
    builder.add_edge(START, "judge")
    builder.add_edge("judge", "review")
    builder.add_conditional_edges("review", after_review, ["align", END])
    builder.add_edge("align", "rejudge")
    builder.add_edge("rejudge", END)
    return builder.compile(checkpointer=checkpointer, name=name)


def expert_feedback(state: FeedbackState) -> Feedback:
    """The expert's answer as feedback on the judged example: a correction, or the verdict confirmed."""
    verdict, answer = state["verdict"], state["review"]
    accepted = answer["action"] == "accept"
    return Feedback(
        inputs=state["inputs"],
        outputs=state.get("outputs"),
        expectations=state.get("expectations"),
        value=verdict["score"] if accepted else answer["value"],
        rationale=None if accepted else answer["rationale"],
        judge_verdict=verdict["score"],
    )


class _Owners:
    """The owner of each judge's memory this graph aligns into: the one it was given, else one per saver,
    judge and namespace over the memory checkpointer (or the run's), made once and kept."""

    def __init__(
        self,
        resolve: ResourceResolver,
        memory: MemoryThread | None,
        memory_checkpointer: BaseCheckpointSaver[Any] | None,
        context_schema: type[FeedbackContext],
    ) -> None:
        self._resolve = resolve
        self._memory = memory
        self._memory_checkpointer = memory_checkpointer
        self._context_schema = context_schema
        self._graphs: dict[int, tuple[BaseCheckpointSaver[Any], AlignmentGraph]] = {}
        self._owners: dict[tuple[int, JudgeSpec, str], MemoryThread] = {}
        self._lock = threading.Lock()

    def get(self, resources: Resources, namespace: str) -> MemoryThread:
        if self._memory is not None:
            return self._memory
        saver = self._memory_checkpointer or run_checkpointer() or resources.memory_checkpointer
        if saver is None:
            raise ConfigurationError("The feedback graph needs a checkpointer: compile it with checkpointer=.")
        with self._lock:
            if id(saver) not in self._graphs:
                graph = build_alignment_graph(
                    self._resolve, checkpointer=saver, context_schema=self._context_schema, name="align"
                )
                self._graphs[id(saver)] = (saver, graph)
            key = (id(saver), resources.spec, namespace)
            if key not in self._owners:
                self._owners[key] = open_memory_thread(
                    self._graphs[id(saver)][1], resources.spec, namespace, episodic_store=resources.episodic_store
                )
            return self._owners[key]


def delete_review_threads(
    checkpointer: BaseCheckpointSaver[Any], spec: JudgeSpec, records: Iterable[FeedbackRecord]
) -> list[str]:
    """Delete this graph's threads that reviewed any of these examples (they hold its text); returns them.

    A thread is a review when its state has the judged example and a verdict; it matches a record when
    its example, held to the judge's fields, is the record's.
    """
    examples = [tuple(record.get(name) for name in _FIELDS) for record in records]
    deleted = []
    for thread_id in sorted(thread_ids(checkpointer)):
        found = checkpointer.get_tuple({"configurable": {"thread_id": thread_id}})
        state = found.checkpoint["channel_values"] if found else {}
        if "inputs" not in state or "verdict" not in state:
            continue
        try:
            fields = spec.validate_record(state, where=f"thread {thread_id}")
        except InvalidValueError:
            continue
        if tuple(fields.get(name) for name in _FIELDS) in examples:
            checkpointer.delete_thread(thread_id)
            deleted.append(thread_id)
    return deleted


_FIELDS = ("inputs", "outputs", "expectations")
