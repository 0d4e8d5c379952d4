"""One alignment of a judge at a time: across threads of a process, and across processes on one home."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def alignment_lock(thread_id: str) -> threading.Lock:
    """One lock per memory thread in this process: two alignments of a judge never interleave."""
    with _thread_locks_guard:
        return _thread_locks.setdefault(thread_id, threading.Lock())


@contextmanager
def exclusive_alignment(thread_id: str, lock_dir: Path | None) -> Iterator[None]:
    """Hold the judge's alignment lock; with a `lock_dir`, also an OS file lock other processes respect.

    A second process waits for the first to finish (the lock is released by the OS if it dies), so
    two processes sharing one SQLite memory never interleave their alignments.
    """
    with alignment_lock(thread_id):
        if lock_dir is None:
            yield
            return
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{thread_id}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
