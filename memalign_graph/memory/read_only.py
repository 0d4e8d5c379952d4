"""Reading a judge's memory from a home nobody may write (a shared, mounted or archived folder).

Semantic memory is read from the SQLite file as it is, without the writes an ordinary open makes (its
journal setup, its tables). Episodes cannot be: qdrant-client's local mode writes to its files as it
opens them, so a read-only home has guidelines, ledger and history to show, and says why not episodes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from langgraph.checkpoint.sqlite import SqliteSaver

from memalign_graph.errors import EpisodicStoreError
from memalign_graph.records import Episode, FeedbackRecord


def is_read_only_failure(error: BaseException) -> bool:
    """Whether opening memory failed because its files may not be written."""
    text = str(error).lower()
    # SQLite says "unable to open" when it may not create its journal beside the file.
    signs = ("readonly database", "read-only file system", "unable to open database file")
    return isinstance(error, PermissionError) or any(sign in text for sign in signs)


def open_read_only_sqlite(path: Path) -> tuple[SqliteSaver, sqlite3.Connection]:
    """A checkpointer that only reads `path` (immutable: no lock, journal or setup is written)."""
    if not path.is_file():
        raise EpisodicStoreError(f"{path}: no semantic memory here to read.")
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    saver = SqliteSaver(connection)
    saver.is_setup = True  # the tables exist; setting them up would write
    return saver, connection


class UnreadableEpisodes:
    """The episodic store of a read-only home: every use says why it cannot be read, and what to do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _refuse(self, *_: Any) -> NoReturn:
        raise EpisodicStoreError(
            f"{self.path}: episodes cannot be read from a read-only home (Qdrant's local mode writes as it "
            "opens its files); copy the home somewhere writable to list them."
        )

    def upsert(
        self, judge: str, namespace: str, records: Sequence[FeedbackRecord], texts: Sequence[str], vectors: Any
    ) -> None:
        self._refuse()

    def delete(self, judge: str, namespace: str, feedback_ids: Iterable[str]) -> None:
        self._refuse()

    def search(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]:
        self._refuse()

    async def asearch(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]:
        self._refuse()

    def feedback_ids(self, judge: str, namespace: str) -> set[str]:
        self._refuse()

    def fingerprints(self, judge: str, namespace: str) -> dict[str, str]:
        self._refuse()

    def vectors(self, judge: str, namespace: str) -> dict[str, tuple[str, list[float]]]:
        self._refuse()

    def episodes(self, judge: str, namespace: str, limit: int) -> list[dict[str, Any]]:
        self._refuse()

    def count(self, judge: str, namespace: str) -> int:
        self._refuse()

    def check(self) -> None:
        self._refuse()

    def compact(self, judge: str, namespace: str) -> None:
        self._refuse()

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
