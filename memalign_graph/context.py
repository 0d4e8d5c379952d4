"""Per-run settings of the graphs (LangGraph runtime context), and the defaults they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_NAMESPACE = "default"
# LLM calls in flight at once (distillation fan-out, close calls, batch judging). Measured on 2 cores at
# 300 ms a call: 16 keeps batch judging within 10% of ideal; with batches of 32 feedback, 1,000 align in ~2 s.
DEFAULT_MAX_CONCURRENCY = 16


@dataclass(frozen=True)
class MemoryContext:
    """Settings judging and alignment share: whose memory, and how much of it fits a prompt.

    `namespace` unset means the namespace the graph is bound to, else `DEFAULT_NAMESPACE`.
    """

    namespace: str | None = None
    guideline_token_budget: int = 1500
    field_token_budget: int = 1000


@dataclass(frozen=True)
class JudgeContext(MemoryContext):
    """Per-run settings of the judging graph (LangGraph runtime context)."""

    k: int = 5
    max_parse_attempts: int = 3
    exclude_self: bool = False  # retrieve around the judged example's own records (judging/leakage.py)


@dataclass(frozen=True)
class AlignmentContext(MemoryContext):
    """Per-run settings of the alignment graph (LangGraph runtime context)."""

    batch_size: int = 32
    max_distill_attempts: int = 3
    merge_similarity: float = 0.92
    close_call_similarity: float = 0.8
    keep_episodes: Literal["all", "mistakes"] = "all"
    distill: bool = True  # False: episodes only (an ablation); feedback stays pending for a later distillation


@dataclass(frozen=True)
class FeedbackContext(AlignmentContext, JudgeContext):
    """Per-run settings of the feedback graph: those of judging and alignment, and what to keep."""

    keep_confirmed_verdicts: bool = False
