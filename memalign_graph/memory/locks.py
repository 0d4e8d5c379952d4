"""One writer of a judge's semantic memory at a time: across the threads of a process, and across the
processes that share its backend.

Each backend gets the lock its processes can all see: an OS file lock beside a SQLite file, an
advisory lock for Postgres. A saver in memory lives in one process, so the thread lock is all it needs;
any other saver gets the thread lock too and is documented as one process's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import portalocker
from langgraph.checkpoint.base import BaseCheckpointSaver

from memalign_graph.memory.savers import advisory_key, is_saver, postgres_conninfo, sqlite_file

BackendLock = Callable[[], AbstractContextManager[None]]

_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()


def thread_lock(thread_id: str) -> threading.RLock:
    """One re-entrant lock per memory thread in this process."""
    with _thread_locks_guard:
        return _thread_locks.setdefault(thread_id, threading.RLock())


class MemoryLock:
    """The thread lock of a memory thread, and at the outermost level its backend's lock as well."""

    def __init__(self, thread_id: str, backend: BackendLock | None = None) -> None:
        self.thread_id = thread_id
        self._thread = thread_lock(thread_id)
        self._backend = backend
        self._depth = threading.local()

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread:
            depth = getattr(self._depth, "value", 0)
            self._depth.value = depth + 1
            try:
                if depth or self._backend is None:
                    yield
                else:
                    with self._backend():
                        yield
            finally:
                self._depth.value = depth


def backend_lock(saver: BaseCheckpointSaver[Any], thread_id: str) -> BackendLock | None:
    """The cross-process lock of a memory thread on this saver's backend, or None where there is none."""
    path = sqlite_file(saver)
    if path is not None:
        return lambda: file_lock(path.parent / "locks" / f"{thread_id}.lock")
    if is_saver(saver, "PostgresSaver") or is_saver(saver, "AsyncPostgresSaver"):
        conninfo = postgres_conninfo(saver.conn)  # type: ignore[attr-defined]
        return lambda: postgres_advisory_lock(conninfo, f"memalign-graph:{thread_id}")
    return None


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An OS lock on a file, which other processes respect and the OS releases if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with portalocker.Lock(str(path), mode="a", flags=portalocker.LockFlags.EXCLUSIVE, timeout=None):
        yield


@contextmanager
def postgres_advisory_lock(conninfo: str, name: str) -> Iterator[None]:
    """A session-level Postgres advisory lock on a connection of its own, held for the block.

    The server releases it if the connection dies, so a killed process never leaves memory locked.
    """
    from psycopg import Connection

    with Connection.connect(conninfo, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (advisory_key(name),))
        yield


def no_lock() -> AbstractContextManager[None]:
    return nullcontext()
