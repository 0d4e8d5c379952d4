"""A judge's memory folder holding N episodes, grown in place: 1k, then 10k, then 100k.

Episodes are synthetic records with random unit vectors, written straight to the episodic store (no
LLM, no alignment): judging cost depends on how many points a search scans, not on where they came from.

The first `MEASURED_POINTS` go through `QdrantEpisodicStore.upsert`, the product's write path, and give
the insert rate. qdrant-client's local mode commits (and fsyncs) SQLite once per point, ~2 ms here, so
100k points that way would take minutes; the rest are bulk-loaded with the client's own row format
(`CollectionPersistence.encode_key` and a pickled `PointStruct`, exactly what `persist` writes) in one
transaction while the client is closed. Reopening then loads them like any other points.
"""

from __future__ import annotations

import pickle
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from qdrant_client import models
from qdrant_client._pydantic_compat import construct
from qdrant_client.local.persistence import STORAGE_FILE_NAME, CollectionPersistence
from qdrant_client.local.utils import normalize_point_id

from benchmarks.workload import JUDGE_NAME, random_unit_vectors, synthetic_records
from memalign_graph.context import DEFAULT_NAMESPACE
from memalign_graph.memory.episodic import episode_metadata, point_id
from memalign_graph.memory.qdrant_store import QdrantEpisodicStore, collection_name
from memalign_graph.rendering import retrieval_text

DIMENSIONS = 384
MEASURED_POINTS = 2000
CHUNK = 1000


@dataclass
class EpisodeCorpus:
    """A memory folder (`home`) whose episodic store grows to the sizes asked for."""

    home: Path
    namespace: str = DEFAULT_NAMESPACE
    size: int = 0
    measured_points: int = 0
    measured_seconds: float = 0.0
    bulk_points: int = 0
    bulk_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def episodes_path(self) -> Path:
        return self.home / "episodes"

    @property
    def collection(self) -> str:
        return collection_name(JUDGE_NAME, self.namespace)

    @property
    def insert_rate(self) -> float:
        """Points per second through `QdrantEpisodicStore.upsert` to the local path."""
        return self.measured_points / self.measured_seconds if self.measured_seconds else 0.0

    def grow_to(self, target: int) -> None:
        """Add episodes until the store holds `target`. The store must not be open elsewhere."""
        if target <= self.size:
            return
        measured = min(target, MEASURED_POINTS) - self.size
        if measured > 0:
            with QdrantEpisodicStore(path=self.episodes_path) as store:
                for start in range(self.size, self.size + measured, CHUNK):
                    count = min(CHUNK, self.size + measured - start)
                    records = list(synthetic_records(start, count))
                    texts = [retrieval_text(record, max_tokens=1000) for record in records]
                    vectors = random_unit_vectors(count, DIMENSIONS, seed=start).tolist()
                    began = time.perf_counter()
                    store.upsert(JUDGE_NAME, self.namespace, records, texts, vectors)
                    self.measured_seconds += time.perf_counter() - began
                    self.measured_points += count
            self.size += measured
        if target > self.size:
            began = time.perf_counter()
            self._bulk_load(self.size, target - self.size)
            self.bulk_seconds += time.perf_counter() - began
            self.bulk_points += target - self.size
            self.size = target

    def _bulk_load(self, start: int, count: int) -> None:
        path = self.episodes_path / "collection" / self.collection / STORAGE_FILE_NAME
        if not path.exists():
            raise RuntimeError(f"{path} is missing: grow_to() writes the first points through the store first")
        connection = sqlite3.connect(path)
        try:
            with connection:
                for chunk_start in range(start, start + count, CHUNK):
                    chunk = min(CHUNK, start + count - chunk_start)
                    vectors = random_unit_vectors(chunk, DIMENSIONS, seed=chunk_start)
                    rows = []
                    for record, vector in zip(synthetic_records(chunk_start, chunk), vectors, strict=True):
                        key = normalize_point_id(point_id(JUDGE_NAME, self.namespace, record["id"]))
                        point = construct(
                            models.PointStruct,
                            id=key,
                            vector=vector.tolist(),
                            payload={
                                "page_content": retrieval_text(record, max_tokens=1000),
                                "metadata": episode_metadata(record, JUDGE_NAME, self.namespace),
                            },
                        )
                        rows.append((CollectionPersistence.encode_key(key), sqlite3.Binary(pickle.dumps(point))))
                    connection.executemany("INSERT OR REPLACE INTO points VALUES (?, ?)", rows)
        finally:
            connection.close()

    def disk_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.episodes_path.rglob("*") if path.is_file())
