"""Episodic memory: past examples, above all the judge's mistakes, found again by similarity.

Callers depend on `EpisodicStore` alone (export and import, the command line, the facade); Qdrant is
the implementation (`memalign_graph.memory.qdrant_store`; Qdrant's embedded engine for large local
memories, `memalign_graph.memory.edge_store`), and tests may bring any other. Every call
is confined to one judge and namespace: one judge or tenant never sees another's records.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from memalign_graph.records import Episode, FeedbackRecord

_POINT_NAMESPACE = uuid.UUID("6f1c1d52-5a3e-4c53-9a43-7f0b1e6f5d10")


class EpisodicStore(Protocol):
    """Where episodes live; every call is confined to one judge and namespace."""

    def upsert(
        self,
        judge: str,
        namespace: str,
        records: Sequence[FeedbackRecord],
        texts: Sequence[str],
        vectors: Sequence[list[float]],
    ) -> None: ...

    def delete(self, judge: str, namespace: str, feedback_ids: Iterable[str]) -> None: ...

    def search(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]: ...

    async def asearch(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]: ...

    def feedback_ids(self, judge: str, namespace: str) -> set[str]:
        """Every feedback id with an episode here."""
        ...

    def fingerprints(self, judge: str, namespace: str) -> dict[str, str]:
        """Each episode's content hash by feedback id: the store's side of a consistency check."""
        ...

    def vectors(self, judge: str, namespace: str) -> dict[str, tuple[str, list[float]]]:
        """Each episode's embedded text and vector by feedback id: what an export carries."""
        ...

    def episodes(self, judge: str, namespace: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` stored episodes, for people inspecting memory."""
        ...

    def count(self, judge: str, namespace: str) -> int: ...

    def check(self) -> None:
        """Raise a clear `EpisodicStoreError` now if the store cannot be written, before any write."""
        ...

    def compact(self, judge: str, namespace: str) -> None:
        """Drop what deletions left on disk, so forgotten records cannot be read back from the files."""
        ...

    def close(self) -> None: ...

    async def aclose(self) -> None:
        """Close what this event loop opened (a later call on the loop opens it again)."""
        ...


def point_id(judge: str, namespace: str, feedback_id: str) -> str:
    """A point id derived from the feedback id, so a repeated feedback overwrites its episode."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{namespace}/{judge}/{feedback_id}"))


def unit_vector(vector: Sequence[float]) -> list[float]:
    """The vector scaled to length 1 (a zero vector stays as it is)."""
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector] if norm else list(vector)


def episode_metadata(record: FeedbackRecord, judge: str, namespace: str) -> dict[str, Any]:
    return {
        "feedback_id": record["id"],
        "judge": judge,
        "namespace": namespace,
        "inputs": record["inputs"],
        "outputs": record["outputs"],
        "expectations": record["expectations"],
        "value": record["value"],
        "rationale": record["rationale"],
        "judge_verdict": record["judge_verdict"],
        "judge_was_wrong": record["judge_was_wrong"],
        "content_hash": record["content_hash"],
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
    }


def episode_points(
    judge: str,
    namespace: str,
    records: Sequence[FeedbackRecord],
    texts: Sequence[str],
    vectors: Sequence[list[float]],
) -> list[tuple[str, list[float], dict[str, Any]]]:
    """Each record's point as every engine stores it: (id, unit vector, `{page_content, metadata}` payload)."""
    if not len(records) == len(texts) == len(vectors):
        raise ValueError("upsert: records, texts and vectors must have the same length.")
    return [
        (
            point_id(judge, namespace, record["id"]),
            unit_vector(vector),
            {"page_content": text, "metadata": episode_metadata(record, judge, namespace)},
        )
        for record, text, vector in zip(records, texts, vectors, strict=True)
    ]


def episode_from_payload(payload: dict[str, Any], similarity: float) -> Episode:
    meta = payload.get("metadata", {})
    return Episode(
        feedback_id=meta["feedback_id"],
        inputs=meta.get("inputs"),
        outputs=meta.get("outputs"),
        expectations=meta.get("expectations"),
        value=meta.get("value"),
        rationale=meta.get("rationale"),
        judge_verdict=meta.get("judge_verdict"),
        judge_was_wrong=meta.get("judge_was_wrong"),
        similarity=float(similarity),
    )
