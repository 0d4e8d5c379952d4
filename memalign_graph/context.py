"""Per-run settings of the graphs (LangGraph runtime context), and the defaults they share."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from memalign_graph.errors import InvalidValueError
from memalign_graph.spec import check_identifier

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

    def __post_init__(self) -> None:
        """A run's context comes from anywhere (a served run's JSON, a user's dict): check every setting
        here, so a bad one is one line naming it, never a `TypeError` deep in a node."""
        if self.namespace is not None:
            check_identifier(self.namespace, field="context.namespace")
        for setting in fields(self):
            rule = _RULES.get(setting.name)
            if rule is not None:
                _check(setting.name, getattr(self, setting.name), *rule)


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
    # Each draft guideline is judged against the feedback it cites (one more call per batch) and refused when
    # it contradicts an expert's verdict there (memalign_graph.alignment.evidence).
    check_evidence: bool = True


@dataclass(frozen=True)
class FeedbackContext(AlignmentContext, JudgeContext):
    """Per-run settings of the feedback graph: those of judging and alignment, and what to keep."""

    keep_confirmed_verdicts: bool = False


# A setting's kind and range: (kind, low, high) for numbers, (kind, choices) for words.
_RULES: dict[str, tuple[Any, ...]] = {
    "guideline_token_budget": (int, 0, 1_000_000),
    "field_token_budget": (int, 1, 1_000_000),
    "k": (int, 0, 100),
    "max_parse_attempts": (int, 1, 20),
    "batch_size": (int, 1, 1_000),
    "max_distill_attempts": (int, 1, 20),
    "merge_similarity": (float, 0.0, 1.0),
    "close_call_similarity": (float, 0.0, 1.0),
    "keep_episodes": (str, ("all", "mistakes")),
    "distill": (bool,),
    "exclude_self": (bool,),
    "check_evidence": (bool,),
    "keep_confirmed_verdicts": (bool,),
}


def _check(name: str, value: Any, kind: type, *limits: Any) -> None:
    if kind is bool:
        if not isinstance(value, bool):
            raise InvalidValueError(f"context.{name}: {value!r} is not true or false.")
        return
    if kind is str:
        if value not in limits[0]:
            raise InvalidValueError(f"context.{name}: {value!r} is not one of {list(limits[0])}.")
        return
    low, high = limits
    whole = kind is int
    number = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not number or not low <= value <= high:
        what = "a whole number" if whole else "a number"
        raise InvalidValueError(f"context.{name}: {value!r} is not {what} from {low} to {high}.")
