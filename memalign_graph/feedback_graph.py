"""The feedback graph: judge, ask an expert, learn from the answer, judge again.

START -> judge -> review (interrupt) -> align -> rejudge -> END; accepting the verdict ends the run
after review unless confirmed verdicts are kept as episodes. The interrupt carries the verdict and the
memory it used; the thread is checkpointed, so the expert may answer after a process restart.
"""

from __future__ import annotations

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

from memalign_graph.alignment.graph import build_alignment_graph
from memalign_graph.context import FeedbackContext
from memalign_graph.errors import ConfigurationError
from memalign_graph.feedback import Feedback
from memalign_graph.judging.graph import build_judge_graph
from memalign_graph.judging.state import MemoryUsed
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.locks import alignment_lock
from memalign_graph.memory.semantic import SemanticMemoryReader, memory_thread_id, run_checkpointer
from memalign_graph.records import AlignmentReport, Verdict
from memalign_graph.resources import ResourceResolver, Resources, fixed
from memalign_graph.spec import JudgeSpec


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


def create_feedback_graph(
    model: BaseChatModel,
    /,
    *,
    spec: JudgeSpec,
    embeddings: Embeddings,
    episodic_store: EpisodicStore,
    semantic_memory: SemanticMemoryReader | None = None,
    memory_checkpointer: BaseCheckpointSaver | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    name: str | None = None,
) -> CompiledStateGraph:
    """Compile the feedback graph for one judge.

    `checkpointer` keeps this graph's own threads (interrupts need one). Semantic memory lives in
    `memory_checkpointer` (default: the checkpointer of the run itself) on the judge's memory thread.
    """
    resources = Resources(
        spec=spec, model=model, embeddings=embeddings, episodic_store=episodic_store, semantic_memory=semantic_memory
    )
    return build_feedback_graph(
        fixed(resources),
        memory_checkpointer=memory_checkpointer,
        checkpointer=checkpointer,
        name=name or f"feedback:{spec.name}",
    )


def build_feedback_graph(
    resolve: ResourceResolver,
    *,
    memory_checkpointer: BaseCheckpointSaver | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    context_schema: type[FeedbackContext] = FeedbackContext,
    name: str = "feedback",
) -> CompiledStateGraph:
    """The feedback graph over resources resolved per run (see `create_feedback_graph`)."""
    judge_graph = build_judge_graph(resolve, context_schema=context_schema, name="judge")
    alignment_graphs: dict[int, tuple[BaseCheckpointSaver, CompiledStateGraph]] = {}

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
        """Run the alignment graph on the judge's memory thread with the expert's answer (idempotent)."""
        context = runtime.context or FeedbackContext()
        resources = resolve(runtime)
        saver = memory_checkpointer or run_checkpointer()
        if saver is None:
            raise ConfigurationError("The feedback graph needs a checkpointer: compile it with checkpointer=.")
        if id(saver) not in alignment_graphs:
            graph = build_alignment_graph(resolve, checkpointer=saver, context_schema=context_schema, name="align")
            alignment_graphs[id(saver)] = (saver, graph)
        graph = alignment_graphs[id(saver)][1]
        verdict, answer = state["verdict"], state["review"]
        accepted = answer["action"] == "accept"
        feedback = Feedback(
            inputs=state["inputs"],
            outputs=state.get("outputs"),
            expectations=state.get("expectations"),
            value=verdict["score"] if accepted else answer["value"],
            rationale=None if accepted else answer["rationale"],
            judge_verdict=verdict["score"],
        )
        thread_id = memory_thread_id(resources.spec.name, context.namespace)
        with alignment_lock(thread_id):
            result = graph.invoke(
                {"feedback": [feedback.as_input()], "forget": [], "forget_guidelines": []},
                {"configurable": {"thread_id": thread_id}},
                context=context,
            )
        return {"alignment": result["report"]}

    def rejudge(state: FeedbackState, runtime: Runtime[FeedbackContext]) -> dict[str, Any]:
        """Judge the example again with the memory the correction just changed."""
        example = {key: state.get(key) for key in ("inputs", "outputs", "expectations")}
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
