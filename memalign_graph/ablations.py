"""The protocol's ablations: which memory a judge uses, and what the experts' feedback keeps.

- memory `semantic`: judge with guidelines only (retrieval k = 0; episodes are still stored).
- memory `episodic`: judge with past examples only. Alignment runs with a stand-in model that distills
  no guidelines, so semantic memory stays empty and no LLM call is spent (or counted) on distillation.
- feedback `label`: the expert's value without the rationale; `rationale`: the rationale without the value
  (a row with no rationale then gives no feedback at all).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver

from memalign_graph.datasets import LabeledExample
from memalign_graph.episodic import EpisodicStore
from memalign_graph.feedback import Feedback
from memalign_graph.judge import MemAlignJudge
from memalign_graph.spec import JudgeSpec
from memalign_graph.state import JudgeContext

MemoryVariant = Literal["both", "semantic", "episodic"]
FeedbackVariant = Literal["both", "label", "rationale"]
MEMORY_VARIANTS: tuple[str, ...] = ("both", "semantic", "episodic")
FEEDBACK_VARIANTS: tuple[str, ...] = ("both", "label", "rationale")


@dataclass(frozen=True)
class Variant:
    """One line of a learning curve: which memories judge, and what feedback they learn from."""

    memory: MemoryVariant = "both"
    feedback: FeedbackVariant = "both"

    def __post_init__(self) -> None:
        if self.memory not in MEMORY_VARIANTS:
            raise ValueError(f"memory: {self.memory!r} is not one of {list(MEMORY_VARIANTS)}.")
        if self.feedback not in FEEDBACK_VARIANTS:
            raise ValueError(f"feedback: {self.feedback!r} is not one of {list(FEEDBACK_VARIANTS)}.")

    @property
    def key(self) -> str:
        """A short name that is also a valid namespace: `both-both`, `episodic-label`, ..."""
        return f"{self.memory}-{self.feedback}"

    @property
    def label(self) -> str:
        return f"memory={self.memory}, feedback={self.feedback}"


def variant_feedback(example: LabeledExample, variant: Variant) -> Feedback | None:
    """The example's feedback as the variant keeps it; None when it keeps nothing."""
    return example.feedback(value=variant.feedback != "rationale", rationale=variant.feedback != "label")


@dataclass(frozen=True)
class VariantJudges:
    """The judge that learns (alignment) and the judge that answers; the same one unless memory is `episodic`."""

    aligner: MemAlignJudge
    judge: MemAlignJudge


@contextmanager
def open_variant_judges(
    spec: JudgeSpec,
    model: BaseChatModel,
    embeddings: Embeddings,
    variant: Variant,
    *,
    episodic_store: EpisodicStore,
    checkpointer: BaseCheckpointSaver,
    namespace: str,
    k: int = 5,
    max_concurrency: int = 4,
) -> Iterator[VariantJudges]:
    """Judges over the given stores, set up for the variant's memory; closed when the block ends."""
    context = JudgeContext(k=0 if variant.memory == "semantic" else k)
    shared: dict[str, Any] = {
        "embeddings": embeddings,
        "namespace": namespace,
        "episodic_store": episodic_store,
        "checkpointer": checkpointer,
        "max_concurrency": max_concurrency,
    }
    judge = MemAlignJudge(spec, model, judge_context=context, **shared)
    aligner = MemAlignJudge(spec, NoDistillationModel(), **shared) if variant.memory == "episodic" else judge
    try:
        yield VariantJudges(aligner=aligner, judge=judge)
    finally:
        judge.close()
        aligner.close()


class NoDistillationModel(BaseChatModel):
    """Stands in for the model during episodic-only alignment: it distills no guidelines and calls nothing.

    Alignment then stores every episode and leaves semantic memory empty. It refuses to judge.
    """

    @property
    def _llm_type(self) -> str:
        return "memalign-no-distillation"

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        answer = _no_guidelines(schema.get("title") if isinstance(schema, dict) else None)

        def respond(_messages: Any) -> Any:
            parsed = json.loads(answer)
            return {"raw": AIMessage(answer), "parsed": parsed, "parsing_error": None} if include_raw else parsed

        return RunnableLambda(respond)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "\n".join(str(message.content) for message in messages)
        title = "guideline_comparison" if '"title": "guideline_comparison"' in text else None
        if '"title": "verdict"' in text:
            title = "verdict"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(_no_guidelines(title)))])


def _no_guidelines(title: str | None) -> str:
    if title == "verdict":
        raise RuntimeError("NoDistillationModel only stands in for distillation; judge with a real model.")
    if title == "guideline_comparison":
        return json.dumps({"relation": "different", "merged": ""})
    return json.dumps({"guidelines": []})
