"""The protocol's ablations: which memory a judge uses, and what the experts' feedback keeps.

- memory `semantic`: judge with guidelines only (retrieval k = 0; episodes are still stored).
- memory `episodic`: judge with past examples only. Alignment runs with distillation switched off
  (`AlignmentContext(distill=False)`), so semantic memory stays empty and no LLM call is spent on it.
- feedback `label`: the expert's value without the rationale; `rationale`: the rationale without the value
  (a row with no rationale then gives no feedback at all).

Reports name them as the paper does: `MemAlign` (both memories), `semantic only`, `episodic only`, with
`labels only` or `feedback only` added for the feedback ablations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from memalign_graph.context import AlignmentContext, JudgeContext

if TYPE_CHECKING:  # the judges are opened when a variant runs; naming variants needs none of this
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from memalign_graph.evaluation.datasets import LabeledExample
    from memalign_graph.feedback import Feedback
    from memalign_graph.judge import MemAlignJudge
    from memalign_graph.memory.episodic import EpisodicStore
    from memalign_graph.spec import JudgeSpec

MemoryVariant = Literal["both", "semantic", "episodic"]
FeedbackVariant = Literal["both", "label", "rationale"]
# Examples seen at each measurement of a learning curve, as the MemAlign paper measures it.
DEFAULT_SHARDS = (0, 2, 5, 10, 20, 50)
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

    @property
    def name(self) -> str:
        """The name a paper gives it: `MemAlign`, `semantic only`, `episodic only, labels only`, ..."""
        return variant_name(self.key)


MEMORY_NAMES = {"both": "MemAlign", "semantic": "semantic only", "episodic": "episodic only"}
FEEDBACK_NAMES = {"both": "", "label": "labels only", "rationale": "feedback only"}


def variant_order(key: str) -> tuple[int, int, str]:
    """Where a variant goes in tables and legends: MemAlign first, then semantic only, then episodic only."""
    memory, _, feedback = key.partition("-")
    memories, feedbacks = list(MEMORY_NAMES), list(FEEDBACK_NAMES)
    return (
        memories.index(memory) if memory in memories else len(memories),
        feedbacks.index(feedback) if feedback in feedbacks else len(feedbacks),
        key,
    )


def variant_name(key: str) -> str:
    """A variant key (`both-both`, `episodic-label`) as readers know it; an unknown key stays as it is."""
    memory, _, feedback = key.partition("-")
    if memory not in MEMORY_NAMES or feedback not in FEEDBACK_NAMES:
        return key
    return ", ".join(part for part in (MEMORY_NAMES[memory], FEEDBACK_NAMES[feedback]) if part)


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
    from memalign_graph.judge import MemAlignJudge

    context = JudgeContext(k=0 if variant.memory == "semantic" else k)
    shared: dict[str, Any] = {
        "embeddings": embeddings,
        "namespace": namespace,
        "episodic_store": episodic_store,
        "checkpointer": checkpointer,
        "max_concurrency": max_concurrency,
    }
    judge = MemAlignJudge(spec, model, judge_context=context, **shared)
    episodes_only = AlignmentContext(distill=False)
    aligner = (
        MemAlignJudge(spec, model, alignment_context=episodes_only, **shared) if variant.memory == "episodic" else judge
    )
    try:
        yield VariantJudges(aligner=aligner, judge=judge)
    finally:
        judge.close()
        aligner.close()
