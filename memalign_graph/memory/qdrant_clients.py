"""How the episodic store reaches Qdrant: one shared client per local path, and the write-ahead log.

qdrant-client's local mode locks its path to the first client that opens it, and loses points when two
threads upsert at once: so stores on one path in a process share one client and one write lock.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import QdrantClient

from memalign_graph.errors import EpisodicStoreError


@dataclass
class _SharedClient:
    client: QdrantClient
    write_lock: threading.Lock
    users: int


_local_clients: dict[Path, _SharedClient] = {}
_local_clients_lock = threading.Lock()


def is_server(client: QdrantClient) -> bool:
    """Whether a client talks to a Qdrant server (an async client can share it) or runs local mode."""
    options = client.init_options
    return options.get("path") is None and options.get("location") != ":memory:"


def server_address(client: QdrantClient) -> str:
    options = client.init_options
    return str(options.get("url") or options.get("host") or options.get("location") or "localhost")


def open_local(path: Path) -> tuple[QdrantClient, threading.Lock]:
    with _local_clients_lock:
        shared = _local_clients.get(path)
        if shared is None:
            path.mkdir(parents=True, exist_ok=True)
            try:
                client = QdrantClient(path=str(path))
            except RuntimeError as error:
                raise EpisodicStoreError(
                    f"Cannot open the episodic store at {path}: {error} Another process holds it; "
                    "stop that process, or give this one its own path (or a Qdrant server URL)."
                ) from error
            journal_ahead(client)
            shared = _local_clients[path] = _SharedClient(client=client, write_lock=threading.Lock(), users=0)
        shared.users += 1
        return shared.client, shared.write_lock


def journal_ahead(client: QdrantClient) -> None:
    """Let local mode's per-point commits go to a write-ahead log without an fsync each (~2 ms a point).

    qdrant-client commits every point on its own; with WAL and synchronous=NORMAL, 1,000 upserts take
    ~0.3 s instead of ~2 s. A killed process loses nothing; a power cut may lose the last commits,
    which `MemAlignJudge.repair()` restores from the ledger. Reaches into qdrant-client's local
    persistence (pinned below 1.21): when that shape changes, writes stay correct, just slower.
    """
    collections = getattr(getattr(client, "_client", None), "collections", None) or {}
    for collection in collections.values():
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")


def release_local(path: Path) -> None:
    with _local_clients_lock:
        shared = _local_clients.get(path)
        if shared is None:
            return
        shared.users -= 1
        if shared.users == 0:
            del _local_clients[path]
            shared.client.close()
