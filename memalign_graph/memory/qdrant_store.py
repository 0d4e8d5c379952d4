"""Episodic memory on Qdrant: local mode at a path (the embedded default), in memory, or a server by URL.

A collection per judge and namespace keeps the judging hot path unfiltered in local mode (which has no
payload index, so a filter scans) and makes isolation structural. On a server, one shared collection
with tenant payload indexes is Qdrant's multitenancy pattern.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal

from qdrant_client import AsyncQdrantClient, QdrantClient, models

from memalign_graph.errors import EpisodicStoreError
from memalign_graph.memory.blas_threads import model_in_process, one_blas_thread
from memalign_graph.memory.episodic import episode_from_payload, episode_points, point_id, unit_vector
from memalign_graph.memory.qdrant_clients import (
    AsyncClients,
    is_server,
    journal_ahead,
    open_local,
    release_local,
    server_address,
)
from memalign_graph.records import Episode, FeedbackRecord

_SCROLL_PAGE = 1000


def collection_name(judge: str, namespace: str) -> str:
    """A readable collection name, made unique by a hash of the (namespace, judge) pair."""
    digest = hashlib.sha256(f"{namespace}\x00{judge}".encode()).hexdigest()[:8]
    return f"memalign_{namespace}_{judge}_{digest}"


Layout = Literal["collection_per_judge", "shared"]
LAYOUTS: tuple[Layout, ...] = ("collection_per_judge", "shared")
SHARED_COLLECTION = "memalign_episodes"
_TENANT_KEYS = ("metadata.namespace", "metadata.judge")
# Every query on the shared collection is filtered to one tenant, so Qdrant's multitenancy advice applies:
# no global HNSW graph (m=0), one per tenant value of the payload indexes (payload_m=16) instead.
_TENANT_HNSW = models.HnswConfigDiff(m=0, payload_m=16)


class QdrantEpisodicStore:
    """Episodic memory on Qdrant: local mode at a path (default), in memory, or a server by URL.

    Two layouts. `collection_per_judge` (the default in local mode and in memory) keeps the judging
    path unfiltered, since local mode has no payload index. `shared` (the default for a server) is
    Qdrant's multitenancy pattern: one collection, tenant payload indexes on namespace and judge, an
    HNSW graph per tenant rather than one global graph, and every query, scroll and count filtered.

    Writes go through one lock per client: qdrant-client's local mode loses points when two threads
    upsert at once. Stores opened on the same local path in one process share a client, since the
    path is locked by the first client that opens it.

    On a server, `asearch` goes through an `AsyncQdrantClient` with the sync client's settings, one per
    event loop (its connections belong to the loop that opened them), closed when that loop ends, by
    `aclose()` or by `close()`. Bring your own pair with `client=` and `async_client=` (yours to close).
    """

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        client: QdrantClient | None = None,
        async_client: AsyncQdrantClient | None = None,
        layout: Layout | None = None,
        collection: str = SHARED_COLLECTION,
    ) -> None:
        chosen = [option for option in (path, url, client) if option is not None]
        if len(chosen) > 1:
            raise ValueError("QdrantEpisodicStore: give one of path=, url= or client=, not several.")
        if async_client is not None and client is None:
            raise ValueError("QdrantEpisodicStore: async_client= goes with client=, both for the same Qdrant.")
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"layout: {layout!r} is not 'collection_per_judge' or 'shared'.")
        self.layout: Layout = layout or ("shared" if url else "collection_per_judge")
        self._shared_collection = collection
        self._dimensions: dict[str, int] = {}
        self._indexed: set[str] = set()
        self._local_path: Path | None = None
        self._location = url or (str(path) if path is not None else ("a given client" if client else ":memory:"))
        self._owns_client = client is None
        self._write_lock = threading.Lock()
        if client is not None:
            self._client = client
        elif url is not None:
            self._client = QdrantClient(url=url, api_key=api_key, prefer_grpc=prefer_grpc)
        elif path is not None and str(path) != ":memory:":
            self._local_path = Path(path).expanduser().resolve()
            self._client, self._write_lock = open_local(self._local_path)
        else:
            self._client = QdrantClient(location=":memory:")
        self._async_client = async_client
        self._async_clients: AsyncClients | None = None
        self._searches_in_process = not is_server(self._client)
        if async_client is None and is_server(self._client):
            if client is not None:
                self._location = server_address(client)
            self._async_clients = AsyncClients(self._client)
        self._known_collections: set[str] = set()
        self._closed = False

    @property
    def client(self) -> QdrantClient:
        return self._client

    def check(self) -> None:
        with self._guard():
            self._client.get_collections()

    def compact(self, judge: str, namespace: str) -> None:
        """In local mode, VACUUM the collection's SQLite file: deleted points leave their bytes behind.

        A Qdrant server reclaims deleted points when it optimizes its segments (see Qdrant's docs).
        """
        if self._local_path is None:
            return
        name, _ = self._where(judge, namespace)
        storage = self._local_path / "collection" / name / "storage.sqlite"
        if storage.exists():
            with self._write_lock, closing(sqlite3.connect(storage)) as connection:
                connection.execute("VACUUM")
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no old page left in the log either

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Name the store's location and the fix when Qdrant cannot be reached or refuses a call."""
        try:
            yield
        except EpisodicStoreError:
            raise
        except Exception as error:  # noqa: BLE001 - any client failure becomes one clear error
            if self._local_path is not None or self._location == ":memory:":
                raise
            raise EpisodicStoreError(
                f"Qdrant at {self._location} failed: {type(error).__name__}: {error}. Check that the server is "
                "running and reachable (MEMALIGN_QDRANT_URL, MEMALIGN_QDRANT_API_KEY), or use a local path."
            ) from error

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
        name, _ = self._where(judge, namespace)
        points = [
            models.PointStruct(id=id_, vector=vector, payload=payload)
            for id_, vector, payload in episode_points(judge, namespace, records, texts, vectors)
        ]
        with self._guard(), self._write_lock:
            self._ensure_collection(name, len(vectors[0]))
            self._client.upsert(collection_name=name, points=points, wait=True)

    def delete(self, judge: str, namespace: str, feedback_ids: Iterable[str]) -> None:
        # Point ids are derived from namespace, judge and feedback id: a delete reaches no other tenant.
        ids: list[models.ExtendedPointId] = [point_id(judge, namespace, feedback_id) for feedback_id in feedback_ids]
        name, _ = self._where(judge, namespace)
        if not ids:
            return
        with self._guard(), self._write_lock:
            if not self._collection_exists(name):
                return
            self._client.delete(collection_name=name, points_selector=models.PointIdsList(points=ids), wait=True)

    def search(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]:
        name, tenant = self._where(judge, namespace)
        with self._guard():
            if k <= 0 or not self._collection_exists(name):
                return []
            self._check_dimension(name, len(vector))
            with self._numpy_search():
                hits = self._client.query_points(
                    collection_name=name, query=unit_vector(vector), query_filter=tenant, limit=k, with_payload=True
                ).points
        return [episode_from_payload(hit.payload or {}, hit.score) for hit in hits]

    async def asearch(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]:
        """`search` for async runs, on the event loop and without a worker thread.

        On a server, awaited through this loop's `AsyncQdrantClient`. Local mode is synchronous numpy
        work that no async client can share (a path is locked by its first client), so it runs inline:
        the search holds the GIL, so a worker thread adds a hand-off and contention, not capacity
        (`python -m benchmarks.local_asearch` measures both). The price is event-loop lag while searches
        queue: a process that must keep its loop responsive under bursts wants a Qdrant server.
        """
        if self._async_client is None and self._async_clients is None:
            return self.search(judge, namespace, vector, k)
        if k <= 0:
            return []
        name, tenant = self._where(judge, namespace)
        with self._guard():
            client = await self._loop_client()
            if not await self._acollection_exists(client, name):
                return []
            if name not in self._dimensions:
                self._remember_dimension(name, await client.get_collection(name))
            self._compare_dimension(name, len(vector))
            response = await client.query_points(
                collection_name=name, query=unit_vector(vector), query_filter=tenant, limit=k, with_payload=True
            )
        return [episode_from_payload(hit.payload or {}, hit.score) for hit in response.points]

    def _numpy_search(self) -> AbstractContextManager[None]:
        """Local mode searches with numpy in this process: on one BLAS thread (see `blas_threads`)."""
        return one_blas_thread() if self._searches_in_process and model_in_process() else nullcontext()

    async def _loop_client(self) -> AsyncQdrantClient:
        if self._async_client is not None:
            return self._async_client
        if self._closed or self._async_clients is None:
            raise EpisodicStoreError(f"The episodic store at {self._location} is closed.")
        return await self._async_clients.get()

    async def aclose(self) -> None:
        """Close this event loop's async client now rather than when the loop ends (a later `asearch`
        on the loop opens another). `close()` still releases the store itself."""
        if self._async_clients is not None:
            await self._async_clients.aclose()

    def feedback_ids(self, judge: str, namespace: str) -> set[str]:
        """Every feedback id with an episode here."""
        return set(self.fingerprints(judge, namespace))

    def fingerprints(self, judge: str, namespace: str) -> dict[str, str]:
        """Each episode's content hash by feedback id: the store's side of a consistency check."""
        fields = ["metadata.feedback_id", "metadata.content_hash"]
        with self._guard():
            return {
                point.payload["metadata"]["feedback_id"]: point.payload["metadata"].get("content_hash", "")
                for point in self._scroll(judge, namespace, with_payload=fields, with_vectors=False)
                if point.payload
            }

    def vectors(self, judge: str, namespace: str) -> dict[str, tuple[str, list[float]]]:
        """Each episode's embedded text and vector by feedback id: what an export carries."""
        with self._guard():
            return {
                point.payload["metadata"]["feedback_id"]: (point.payload["page_content"], list(point.vector))
                for point in self._scroll(judge, namespace, with_payload=True, with_vectors=True)
                if point.payload
            }

    def episodes(self, judge: str, namespace: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` stored episodes (their payload metadata), for people inspecting memory."""
        with self._guard():
            found: list[dict[str, Any]] = []
            for point in self._scroll(judge, namespace, with_payload=True, with_vectors=False):
                if len(found) >= limit:
                    break
                found.append((point.payload or {}).get("metadata", {}))
            return found

    def _scroll(self, judge: str, namespace: str, *, with_payload: Any, with_vectors: bool) -> Iterator[Any]:
        name, tenant = self._where(judge, namespace)
        if not self._collection_exists(name):
            return
        offset: Any = None
        while True:
            points, offset = self._client.scroll(
                collection_name=name,
                scroll_filter=tenant,
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=with_payload,
                with_vectors=with_vectors,
            )
            yield from points
            if offset is None:
                return

    def count(self, judge: str, namespace: str) -> int:
        name, tenant = self._where(judge, namespace)
        with self._guard():
            if not self._collection_exists(name):
                return 0
            return self._client.count(collection_name=name, count_filter=tenant, exact=True).count

    def _where(self, judge: str, namespace: str) -> tuple[str, models.Filter | None]:
        """The collection that holds a judge's episodes, and the filter that confines a query to them."""
        if self.layout == "collection_per_judge":
            return collection_name(judge, namespace), None
        conditions: list[models.Condition] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in zip(_TENANT_KEYS, (namespace, judge), strict=True)
        ]
        return self._shared_collection, models.Filter(must=conditions)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._async_clients is not None:
            self._async_clients.close()
        if self._local_path is not None:
            release_local(self._local_path)
        elif self._owns_client:
            self._client.close()

    def __enter__(self) -> QdrantEpisodicStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _collection_exists(self, name: str) -> bool:
        if name in self._known_collections:
            return True
        if self._client.collection_exists(name):
            self._known_collections.add(name)
            return True
        return False

    async def _acollection_exists(self, client: AsyncQdrantClient, name: str) -> bool:
        if name in self._known_collections:
            return True
        if await client.collection_exists(name):
            self._known_collections.add(name)
            return True
        return False

    def _ensure_collection(self, name: str, dimension: int) -> None:
        """Create the collection (and, shared, its tenant indexes) if missing; safe to repeat."""
        if self._collection_exists(name):
            self._check_dimension(name, dimension)
        else:
            self._client.create_collection(
                collection_name=name,
                # Vectors are stored unit-length, so a dot product is their cosine; local mode
                # then skips re-normalizing every stored vector on each query (11 -> 3.5 ms at 10k).
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.DOT),
                hnsw_config=_TENANT_HNSW if self.layout == "shared" else None,
            )
            self._known_collections.add(name)
            if self._local_path is not None:
                journal_ahead(self._client)
        if self.layout == "shared" and name not in self._indexed:
            for key in _TENANT_KEYS:  # Qdrant keeps an existing index as it is
                self._client.create_payload_index(
                    collection_name=name,
                    field_name=key,
                    field_schema=models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
                    wait=True,
                )
            self._indexed.add(name)

    def _check_dimension(self, name: str, dimension: int) -> None:
        if name not in self._dimensions:  # asked once per collection: a round trip on a server
            self._remember_dimension(name, self._client.get_collection(name))
        self._compare_dimension(name, dimension)

    def _remember_dimension(self, name: str, info: models.CollectionInfo) -> None:
        size = getattr(info.config.params.vectors, "size", None)  # None for named vectors: nothing to check
        if size is not None:
            self._dimensions[name] = size

    def _compare_dimension(self, name: str, dimension: int) -> None:
        size = self._dimensions.get(name)
        if size is not None and size != dimension:
            raise EpisodicStoreError(
                f"Episodic collection {name!r} holds {size}-dimensional vectors but the embedding model "
                f"gives {dimension}: use the embedding model the judge was aligned with, or a new namespace."
            )
