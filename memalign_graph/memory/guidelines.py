"""Guideline bookkeeping shared by alignment, judging and forgetting: ids, provenance and rank."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from memalign_graph.records import Guideline


def guideline_id(text: str) -> str:
    """A stable id from the guideline's wording, so the same draft maps to the same guideline."""
    normalized = " ".join(text.casefold().split())
    return "gl-" + hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:12]


def prune_provenance(guidelines: Mapping[str, Guideline], leaving: Iterable[str]) -> dict[str, Guideline]:
    """Remove feedback ids from every guideline's provenance; a guideline left with none goes too."""
    gone = set(leaving)
    kept: dict[str, Guideline] = {}
    for key, guideline in guidelines.items():
        remaining = [feedback_id for feedback_id in guideline["feedback_ids"] if feedback_id not in gone]
        if remaining:
            kept[key] = (
                {**guideline, "feedback_ids": remaining}
                if len(remaining) != len(guideline["feedback_ids"])
                else guideline
            )
    return kept


def rank_guidelines(guidelines: Iterable[Guideline]) -> list[Guideline]:
    """Order guidelines by how much feedback supports them, then by age: the order a budget cuts in."""
    return sorted(
        guidelines,
        key=lambda guideline: (-len(guideline["feedback_ids"]), guideline["created_at"], guideline["id"]),
    )


def provenance(guidelines: Mapping[str, Guideline]) -> set[str]:
    """Every feedback id some guideline cites."""
    return {feedback_id for guideline in guidelines.values() for feedback_id in guideline["feedback_ids"]}
