"""Dedupe: keep semantic memory free of repeats and contradictions, and within its token budget.

Embedding similarity decides the clear cases for free; the LLM is asked only about close calls, and
once more, to consolidate, when the guidelines outgrow their budget. A failed LLM call never loses a
guideline: both versions stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.messages import HumanMessage, SystemMessage

from memalign_graph.alignment.distill import MAX_GUIDELINE_TOKENS, guideline_list_schema, parrots_schema, schema_wording
from memalign_graph.memory.guidelines import guideline_id, rank_guidelines
from memalign_graph.memory.ledger import unpack_vector
from memalign_graph.prompts import (
    CLOSE_CALL_SYSTEM_PROMPT,
    CLOSE_CALL_USER_PROMPT,
    CONSOLIDATE_SYSTEM_PROMPT,
    CONSOLIDATE_USER_PROMPT,
)
from memalign_graph.records import DraftGuideline, Guideline
from memalign_graph.rendering import guideline_block_tokens, render_guidelines, truncate
from memalign_graph.structured_output import StructuredCalls

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

CONSOLIDATE_SCHEMA = guideline_list_schema(
    "consolidated_guidelines",
    "Fewer, shorter guidelines that replace the given ones.",
    "replaces",
    "Ids of the given guidelines this one replaces.",
)
_CLOSE_CALL_WORDING = schema_wording(CLOSE_CALL_SCHEMA)
_CONSOLIDATE_WORDING = schema_wording(CONSOLIDATE_SCHEMA)


def merge_drafts(
    calls: StructuredCalls,
    embeddings: Embeddings,
    guidelines: Mapping[str, Guideline],
    known_vectors: Mapping[str, str],
    drafts: list[DraftGuideline],
    *,
    merge_at: float,
    close_call_at: float,
    max_concurrency: int = 4,
) -> tuple[dict[str, Guideline], dict[str, list[float]], list[bool]]:
    """Add drafts to the guidelines; a draft that says what one already says merges into it (provenance united).

    Close calls are asked only against the guidelines memory already had, all at once (one round trip
    of wall time, not one per draft); drafts of this run merge with each other when near-identical.
    Returns the guidelines, the vectors of those added or reworded (memory keeps the others'), and for
    each draft whether it was kept as a guideline of its own (False: merged into another).
    """
    merged: dict[str, Guideline] = {key: Guideline(**guideline) for key, guideline in guidelines.items()}
    fresh: dict[str, list[float]] = {}
    kept: list[bool] = []
    if not drafts:
        return merged, fresh, kept
    now = _now()
    missing = [key for key in merged if key not in known_vectors]  # e.g. guidelines imported without vectors
    if missing:
        fresh.update(zip(missing, embeddings.embed_documents([merged[key]["text"] for key in missing]), strict=True))
    unique_texts = list(dict.fromkeys(draft["text"] for draft in drafts))  # parallel batches repeat themselves
    unique_vectors = dict(zip(unique_texts, embeddings.embed_documents(unique_texts), strict=True))
    vectors = [unique_vectors[draft["text"]] for draft in drafts]
    index = _SimilarityIndex({key: fresh.get(key) or unpack_vector(known_vectors[key]) for key in merged})
    nearest = [index.nearest(vector) for vector in vectors]
    asked = [
        (merged[key]["text"], draft["text"]) if key is not None and close_call_at <= similarity < merge_at else None
        for draft, (key, similarity) in zip(drafts, nearest, strict=True)
    ]
    answers = _ask_in_parallel(calls, {pair for pair in asked if pair}, max_concurrency)
    for position, (draft, vector) in enumerate(zip(drafts, vectors, strict=True)):
        key, similarity = nearest[position]
        question = asked[position]
        if key is not None and similarity >= merge_at:
            relation, text = "same", ""
        else:
            relation, text = answers[question] if question else ("different", "")
        kept.append(False)
        if key is not None and relation in ("same", "conflict"):
            target = merged[key]
            _absorb(target, draft["feedback_ids"], now)
            if text and text != target["text"]:
                target["text"] = text
                fresh[key] = list(embeddings.embed_query(text))
                index.add(key, fresh[key])
            continue
        twin, twin_similarity = index.nearest(vector)  # now also this run's new guidelines
        if twin is not None and twin_similarity >= merge_at:
            _absorb(merged[twin], draft["feedback_ids"], now)
            continue
        new_key = guideline_id(draft["text"])
        if new_key in merged:
            _absorb(merged[new_key], draft["feedback_ids"], now)
            continue
        kept[-1] = True
        merged[new_key] = Guideline(
            id=new_key,
            text=draft["text"],
            feedback_ids=list(draft["feedback_ids"]),
            created_at=now,
            updated_at=now,
        )
        fresh[new_key] = list(vector)
        index.add(new_key, vector)
    return merged, fresh, kept


def _ask_in_parallel(
    calls: StructuredCalls, questions: set[tuple[str, str]], max_concurrency: int
) -> dict[tuple[str, str], tuple[str, str]]:
    """Each distinct (existing, new) pair asked once, all at once."""
    if not questions:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(questions)))) as pool:
        futures = {pair: pool.submit(close_call, calls, *pair) for pair in questions}
        return {pair: future.result() for pair, future in futures.items()}


def close_call(calls: StructuredCalls, existing: str, new: str) -> tuple[str, str]:
    """Ask the model whether two similar guidelines are the same, in conflict, or different."""
    messages = [
        SystemMessage(CLOSE_CALL_SYSTEM_PROMPT),
        HumanMessage(CLOSE_CALL_USER_PROMPT.format(existing=existing, new=new)),
    ]
    try:
        answer = calls.invoke(CLOSE_CALL_SCHEMA, messages).parsed
    except Exception:  # noqa: BLE001 - keeping both guidelines loses nothing
        return "different", ""
    relation = answer.get("relation")
    merged = " ".join(str(answer.get("merged") or "").split())
    if relation not in ("same", "conflict", "different") or parrots_schema(merged, _CLOSE_CALL_WORDING):
        return "different", ""
    return relation, truncate(merged, MAX_GUIDELINE_TOKENS)


def consolidate(
    calls: StructuredCalls, embeddings: Embeddings, guidelines: dict[str, Guideline], *, token_budget: int
) -> tuple[dict[str, Guideline], dict[str, list[float]]]:
    """Rewrite guidelines that outgrew their budget into fewer ones; provenance follows every rewrite.

    A replacement's provenance is the union of the guidelines it replaces, so forgetting feedback still
    reaches it. Guidelines the answer does not account for stay as they are.
    """
    tokens = guideline_block_tokens(guidelines.values())
    if tokens <= token_budget:
        return guidelines, {}
    ranked = rank_guidelines(guidelines.values())
    messages = [
        SystemMessage(CONSOLIDATE_SYSTEM_PROMPT.format(tokens=tokens, budget=token_budget)),
        HumanMessage(CONSOLIDATE_USER_PROMPT.format(guidelines=render_guidelines(ranked))),
    ]
    try:
        answer = calls.invoke(CONSOLIDATE_SCHEMA, messages).parsed
        items = [item for item in answer["guidelines"] if isinstance(item, dict)]
    except Exception:  # noqa: BLE001 - over budget is better than lost guidance; judging still caps the block
        return guidelines, {}
    result = dict(guidelines)
    fresh: dict[str, list[float]] = {}
    now = _now()
    rewrites: list[tuple[str, list[str]]] = []
    replaced: set[str] = set()
    for item in items:
        text = truncate(" ".join(str(item.get("text") or "").split()), MAX_GUIDELINE_TOKENS)
        sources = [key for key in item.get("replaces") or [] if key in guidelines and key not in replaced]
        if text and sources and not parrots_schema(text, _CONSOLIDATE_WORDING):
            rewrites.append((text, sources))
            replaced.update(sources)
    vectors = embeddings.embed_documents([text for text, _ in rewrites]) if rewrites else []
    for (text, sources), vector in zip(rewrites, vectors, strict=True):
        provenance = sorted({feedback_id for key in sources for feedback_id in guidelines[key]["feedback_ids"]})
        for key in sources:
            result.pop(key, None)
        key = guideline_id(text)
        created = min(guidelines[source]["created_at"] for source in sources)
        if key in result:
            _absorb(result[key], provenance, now)
            continue
        result[key] = Guideline(id=key, text=text, feedback_ids=provenance, created_at=created, updated_at=now)
        fresh[key] = list(vector)
    return result, fresh


class _SimilarityIndex:
    """Unit vectors of the guidelines in one matrix, so a draft is compared with all of them at once."""

    def __init__(self, vectors: Mapping[str, list[float]]) -> None:
        self._keys: list[str] = []
        self._rows: dict[str, int] = {}
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        for key, vector in vectors.items():
            self.add(key, vector)

    def add(self, key: str, vector: list[float]) -> None:
        unit = _unit(vector)
        if key in self._rows:
            self._matrix[self._rows[key]] = unit
            return
        self._matrix = unit[None, :] if not self._keys else np.vstack([self._matrix, unit])
        self._rows[key] = len(self._keys)
        self._keys.append(key)

    def nearest(self, vector: list[float]) -> tuple[str | None, float]:
        if not self._keys:
            return None, -1.0
        similarities = self._matrix @ _unit(vector)
        best = int(np.argmax(similarities))
        return self._keys[best], float(similarities[best])


def _absorb(guideline: Guideline, feedback_ids: list[str], now: str) -> None:
    guideline["feedback_ids"] = sorted(set(guideline["feedback_ids"]) | set(feedback_ids))
    guideline["updated_at"] = now


def _unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


def _now() -> str:
    return datetime.now(UTC).isoformat()
