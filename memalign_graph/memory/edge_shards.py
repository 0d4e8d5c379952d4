"""How the episodic store reaches Qdrant's embedded engine (`qdrant-edge-py`): one shard per folder, shared by
the stores of a process, its write-ahead log kept on, one lock around every call, and compaction by copying.

A shard's write-ahead log locks its folder to the first process that opens it, so stores opened on one
folder in a process share one shard (and one lock), as local mode's clients do. The engine has no
background optimizer: indexing runs when `EdgeEpisodicStore` asks for it, in the calling thread (it holds
the GIL while it builds). Its API is pre-1.0, so the `edge` extra pins it exactly.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    KeywordIndexParams,
    Point,
    ScrollRequest,
    UpdateOperation,
)

from memalign_graph.errors import EpisodicStoreError

TENANT_KEYS = ("metadata.namespace", "metadata.judge")
CONFIG_FILE = "edge_config.json"
_COPY_PAGE = 1000
# A deleted point's bytes go at the next optimization, whatever share of its segment was deleted: the
# engine's defaults (20% of a segment of at least 1,000 points) would keep a forgotten record on disk.
_OPTIMIZERS = EdgeOptimizersConfig(deleted_threshold=0.0, vacuum_min_vector_number=0)


def shard_config(dimension: int | None) -> EdgeConfig:
    """Unit vectors compared by dot product (their cosine), payloads on disk, the write-ahead log on."""
    vectors = EdgeVectorParams(size=dimension, distance=Distance.Dot) if dimension else None
    return EdgeConfig(vectors=vectors, optimizers=_OPTIMIZERS, wal_enabled=True)


def stored_dimension(path: Path) -> int | None:
    """The vector size a shard was created with (its config file), or None when there is no shard yet."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        return int(config["vectors"][""]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class SharedShard:
    """A folder's shard (None until the first write fixes its dimension) and the lock every call takes."""

    path: Path
    shard: EdgeShard | None
    dimension: int | None
    lock: threading.RLock
    users: int = 0

    @contextmanager
    def opened(self) -> Iterator[EdgeShard | None]:
        with self.lock:
            yield self.shard

    def create(self, dimension: int) -> EdgeShard:
        """Create the shard with its tenant payload indexes (caller holds the lock), or load the one another
        process created since this one looked."""
        if (stored := stored_dimension(self.path)) is not None:
            self.shard, self.dimension = load(self.path), stored
            return self.shard
        shard = EdgeShard.create(str(self.path), shard_config(dimension))
        for key in TENANT_KEYS:
            shard.update(UpdateOperation.create_field_index(key, KeywordIndexParams(is_tenant=True)))
        self.shard, self.dimension = shard, dimension
        return shard

    def compact(self) -> None:
        """Rewrite the shard into a new folder holding only its live points, then swap the folders.

        Deletion marks points; their payloads stay in segments until a vacuum and in the write-ahead log
        until it rotates. A copy keeps neither. Crash-safe: the old folder is renamed aside only once the
        copy is complete and closed, and `recover` puts it back if the swap did not finish.
        """
        with self.lock:
            if self.shard is None or self.dimension is None:
                return
            fresh_path = self.path.with_name(self.path.name + ".compacting")
            aside = self.path.with_name(self.path.name + ".old")
            shutil.rmtree(fresh_path, ignore_errors=True)
            old = self.shard
            old.flush()
            fresh = EdgeShard.create(str(fresh_path), shard_config(self.dimension))
            for key in TENANT_KEYS:
                fresh.update(UpdateOperation.create_field_index(key, KeywordIndexParams(is_tenant=True)))
            indexed = old.info().indexed_vectors_count > 0
            for page in scroll_pages(old, with_payload=True, with_vector=True):
                points = [Point(record.id, record.vector, record.payload) for record in page]
                fresh.update(UpdateOperation.upsert_points(points))
            if indexed:
                fresh.optimize()
            fresh.flush()
            fresh.close()
            self.shard = None
            old.close()
            self.path.rename(aside)
            fresh_path.rename(self.path)
            shutil.rmtree(aside, ignore_errors=True)
            self.shard = load(self.path)


def scroll_pages(shard: EdgeShard, *, filter: Any = None, with_payload: Any, with_vector: bool) -> Iterator[list[Any]]:
    """Every point matching the filter, a page at a time."""
    offset: Any = None
    while True:
        page, offset = shard.scroll(
            ScrollRequest(
                offset=offset, limit=_COPY_PAGE, filter=filter, with_payload=with_payload, with_vector=with_vector
            )
        )
        if page:
            yield page
        if offset is None:
            return


def count(shard: EdgeShard, filter: Any) -> int:
    return shard.count(CountRequest(exact=True, filter=filter))


def recover(path: Path) -> None:
    """Finish what a killed compaction left: put the old folder back if the swap did not complete, and
    remove a copy that never became the shard."""
    aside = path.with_name(path.name + ".old")
    if aside.exists() and not path.exists():
        aside.rename(path)
    shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(path.with_name(path.name + ".compacting"), ignore_errors=True)


def load(path: Path) -> EdgeShard:
    try:
        return EdgeShard.load(str(path))
    except Exception as error:  # noqa: BLE001 - the engine raises plain Exceptions
        if "WouldBlock" in str(error) or "lock" in str(error).lower():
            raise EpisodicStoreError(
                f"Cannot open the episodic store at {path}: another process holds it. Stop that process, "
                "or give this one its own memory folder (or a Qdrant server URL)."
            ) from error
        raise EpisodicStoreError(f"Cannot open the episodic store at {path}: {error}") from error


_shared: dict[Path, SharedShard] = {}
_shared_lock = threading.Lock()


def open_shared(path: Path) -> SharedShard:
    """The folder's shard for this process, loaded by its first user (and created by the first write)."""
    with _shared_lock:
        shared = _shared.get(path)
        if shared is None:
            recover(path)
            dimension = stored_dimension(path)
            shard = load(path) if dimension is not None else None
            shared = _shared[path] = SharedShard(path=path, shard=shard, dimension=dimension, lock=threading.RLock())
        shared.users += 1
        return shared


def release_shared(shared: SharedShard) -> None:
    """Close the shard with its last user in the process (its log and segments flushed)."""
    with _shared_lock:
        shared.users -= 1
        if shared.users > 0:
            return
        _shared.pop(shared.path, None)
        with shared.lock:
            if shared.shard is not None:
                shared.shard.flush()
                shared.shard.close()
                shared.shard = None


def is_open_here(path: Path) -> bool:
    with _shared_lock:
        return path in _shared
