"""Episodic memory on Qdrant's embedded engine (`qdrant-edge-py`, the `edge` extra): large memories on one
machine, with no server.

One shard per folder holds every judge and namespace of a memory folder; tenant payload indexes on
namespace and judge let every query, scroll and count be filtered to one judge without scanning (local
mode has no payload index). Points keep the Qdrant store's ids, vectors and `{page_content, metadata}`
payloads, so episodes move between the two as they are.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from qdrant_edge import (
    FieldCondition,
    Filter,
    MatchValue,
    PayloadSelector,
    Point,
    Query,
    QueryRequest,
    SearchParams,
    UpdateOperation,
)

from memalign_graph.errors import EpisodicStoreError
from memalign_graph.memory import edge_shards
from memalign_graph.memory.episodic import episode_from_payload, episode_points, point_id, unit_vector
from memalign_graph.records import Episode, FeedbackRecord

# Points written since the last indexing that make the next write build the HNSW index (blocking that write):
# below it, an exact search over the points not yet indexed stays near a millisecond.
DEFAULT_INDEX_AFTER = 10_000


class EdgeEpisodicStore:
    """Episodic memory on Qdrant's embedded engine: one shard in a folder, or in a temporary folder.

    Every call is filtered to one judge and namespace through tenant payload indexes. The shard's own
    write-ahead log is on (it is also what locks the folder to one process), and every call goes through
    one lock per shard, shared by the stores opened on a folder in a process (one writer).

    The engine indexes only when asked: a write that leaves `index_after` or more points unindexed builds
    the HNSW index before it returns (seconds per 10k points on 2 cores), and `optimize()` does it now.
    Until then a search is exact. `hnsw_ef` widens the approximate search (more recall, more time).
    """

    def __init__(
        self, *, path: str | Path | None = None, index_after: int = DEFAULT_INDEX_AFTER, hnsw_ef: int | None = None
    ) -> None:
        if index_after < 1:
            raise ValueError(f"index_after: {index_after!r} must be a number of points above 0.")
        self._temporary = path is None
        folder = Path(tempfile.mkdtemp(prefix="memalign-edge-")) if path is None else Path(path)
        self.path = folder.expanduser().resolve()
        self.index_after = index_after
        self._params = SearchParams(hnsw_ef=hnsw_ef) if hnsw_ef else None
        self._shared = edge_shards.open_shared(self.path)
        self._closed = False

    def check(self) -> None:
        if self._closed:
            raise EpisodicStoreError(f"The episodic store at {self.path} is closed.")

    def upsert(
        self,
        judge: str,
        namespace: str,
        records: Sequence[FeedbackRecord],
        texts: Sequence[str],
        vectors: Sequence[list[float]],
    ) -> None:
        if not records:
            return
        points = [Point(*point) for point in episode_points(judge, namespace, records, texts, vectors)]
        self.write_points(points, dimension=len(vectors[0]))

    def write_points(self, points: list[Point], *, dimension: int) -> None:
        """Write points as they are (ids, unit vectors, payloads), then index if enough wait for it."""
        self.check()
        with self._shared.opened() as shard:
            if shard is None:
                shard = self._shared.create(dimension)
            self._compare_dimension(dimension)
            shard.update(UpdateOperation.upsert_points(points))
            info = shard.info()
            if info.points_count - info.indexed_vectors_count >= self.index_after:
                shard.optimize()

    def delete(self, judge: str, namespace: str, feedback_ids: Iterable[str]) -> None:
        # Point ids are derived from namespace, judge and feedback id: a delete reaches no other tenant.
        ids: list[Any] = [point_id(judge, namespace, feedback_id) for feedback_id in feedback_ids]
        self.check()
        with self._shared.opened() as shard:
            if ids and shard is not None:
                shard.update(UpdateOperation.delete_points(ids))

    def search(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]:
        self.check()
        with self._shared.opened() as shard:
            if k <= 0 or shard is None:
                return []
            self._compare_dimension(len(vector))
            request = QueryRequest(
                limit=k,
                query=Query.Nearest(unit_vector(vector)),
                filter=_tenant(judge, namespace),
                with_payload=True,
                with_vector=False,
                params=self._params,
            )
            hits = shard.query(request)
        return [episode_from_payload(hit.payload or {}, hit.score) for hit in hits]

    async def asearch(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]:
        """`search`, inline on the event loop: a millisecond of native work that holds the GIL, so a worker
        thread would add a hand-off, not capacity (as in local mode)."""
        return self.search(judge, namespace, vector, k)

    async def aclose(self) -> None:
        """Nothing is opened per event loop."""

    def feedback_ids(self, judge: str, namespace: str) -> set[str]:
        """Every feedback id with an episode here."""
        return set(self.fingerprints(judge, namespace))

    def fingerprints(self, judge: str, namespace: str) -> dict[str, str]:
        """Each episode's content hash by feedback id: the store's side of a consistency check."""
        fields = PayloadSelector.Include(["metadata.feedback_id", "metadata.content_hash"])
        return {
            meta["feedback_id"]: meta.get("content_hash", "")
            for record in self._records(judge, namespace, with_payload=fields, with_vector=False)
            if (meta := (record.payload or {}).get("metadata"))
        }

    def vectors(self, judge: str, namespace: str) -> dict[str, tuple[str, list[float]]]:
        """Each episode's embedded text and vector by feedback id: what an export carries."""
        return {
            record.payload["metadata"]["feedback_id"]: (record.payload["page_content"], list(record.vector))
            for record in self._records(judge, namespace, with_payload=True, with_vector=True)
            if record.payload
        }

    def episodes(self, judge: str, namespace: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` stored episodes (their payload metadata), for people inspecting memory."""
        found: list[dict[str, Any]] = []
        for record in self._records(judge, namespace, with_payload=True, with_vector=False):
            if len(found) >= limit:
                break
            found.append((record.payload or {}).get("metadata", {}))
        return found

    def count(self, judge: str, namespace: str) -> int:
        self.check()
        with self._shared.opened() as shard:
            return 0 if shard is None else edge_shards.count(shard, _tenant(judge, namespace))

    def optimize(self) -> bool:
        """Build the HNSW index over the points not yet indexed and vacuum deleted ones, now (blocking).
        True if anything changed."""
        self.check()
        with self._shared.opened() as shard:
            return False if shard is None else shard.optimize()

    def compact(self, judge: str, namespace: str) -> None:
        """Rewrite the shard with its live points only, so forgotten records cannot be read back from the
        files (their bytes stay in segments and the write-ahead log otherwise). The whole folder's shard
        is copied: seconds per 10k episodes, and an index rebuild when it was indexed."""
        self.check()
        self._shared.compact()

    def _records(self, judge: str, namespace: str, *, with_payload: Any, with_vector: bool) -> list[Any]:
        self.check()
        with self._shared.opened() as shard:
            if shard is None:
                return []
            pages = edge_shards.scroll_pages(
                shard, filter=_tenant(judge, namespace), with_payload=with_payload, with_vector=with_vector
            )
            return [record for page in pages for record in page]

    def _compare_dimension(self, dimension: int) -> None:
        size = self._shared.dimension
        if size is not None and size != dimension:
            raise EpisodicStoreError(
                f"The episodic store at {self.path} holds {size}-dimensional vectors but the embedding model "
                f"gives {dimension}: use the embedding model this memory folder was aligned with, or another "
                "memory folder (one embedded shard holds one vector size)."
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        edge_shards.release_shared(self._shared)
        if self._temporary:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> EdgeEpisodicStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _tenant(judge: str, namespace: str) -> Filter:
    conditions: list[Any] = [
        FieldCondition(key, match=MatchValue(value))
        for key, value in zip(edge_shards.TENANT_KEYS, (namespace, judge), strict=True)
    ]
    return Filter(must=conditions)
