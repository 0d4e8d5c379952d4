"""Guideline bookkeeping shared by alignment and forgetting: ids and provenance."""

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
