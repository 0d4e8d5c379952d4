"""A crash at any write loses nothing: purge, rollback and alignment, stopped at each write they make in turn.

A crash is simulated where a process would die: just before the n-th write any store makes (a checkpoint,
its writes, a thread deletion, an episode upsert or delete, a compaction), for every n the operation
reaches. The stores are then closed as they are and a new judge opens them, as a restarted process
would. Before: a crash during purge wiped semantic memory (its thread was deleted before the rewritten
one was written), and repair then deleted every episode as orphaned; a crash during rollback left
episodes whose values disagreed with the ledger, and verify said "consistent".
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_schema
from langgraph.checkpoint.sqlite import SqliteSaver

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import AlignmentContext, Boolean, Feedback, JudgeSpec, MemAlignJudge, QdrantEpisodicStore
from memalign_graph.memory.savers import open_postgres_checkpointer

SECRET = "Zanzibar-patient-4471"
SPEC = JudgeSpec(name="support_tone", instructions="Is the reply appropriate?", output=Boolean())
SAVER_WRITES = ("put", "put_writes", "delete_thread")
STORE_WRITES = ("upsert", "delete", "compact")


class Crash(BaseException):
    """The process dies here (a BaseException, so no `except Exception` on the way catches it)."""


class CrashAt:
    """Counts the writes of a saver and a store, and crashes just before the n-th (never, with None)."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.writes = 0
        self._lock = threading.Lock()

    def arm(self, obj: Any, names: tuple[str, ...]) -> None:
        for name in names:
            setattr(obj, name, self._counted(getattr(obj, name)))

    def _counted(self, write: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.writes += 1
                crash = self.writes == self.n
            if crash:
                raise Crash
            return write(*args, **kwargs)

        return counted


def feedback(prefix: str, count: int, *, value: bool = True) -> list[Feedback]:
    return [
        Feedback(
            id=f"{prefix}-{n}",
            inputs=f"question {prefix} {n}",
            outputs=f"answer {n}",
            value=value,
            rationale=f"Mind {prefix}x{n}a {prefix}x{n}b.",
        )
        for n in range(count)
    ]


class Stores:
    """One home's stores, opened and closed as a process would (the backend: SQLite or Postgres)."""

    def __init__(self, home: Path, postgres_url: str | None) -> None:
        self.home = home
        self.postgres_url = postgres_url

    @contextmanager
    def judge(self, crash: CrashAt | None = None) -> Iterator[MemAlignJudge]:
        store = QdrantEpisodicStore(path=self.home / "episodes")
        if self.postgres_url:
            saver, close = open_postgres_checkpointer(self.postgres_url)
        else:
            connection = sqlite3.connect(self.home / "semantic.sqlite", check_same_thread=False)
            saver, close = SqliteSaver(connection), connection.close
        if crash is not None:
            crash.arm(saver, SAVER_WRITES)
            crash.arm(store, STORE_WRITES)
        judge = MemAlignJudge(
            SPEC,
            ScriptedChatModel(),
            embeddings=BagOfWordsEmbeddings(),
            episodic_store=store,
            checkpointer=saver,
            alignment_context=AlignmentContext(batch_size=8),
        )
        try:
            yield judge
        finally:  # no clean shutdown of the judge: the process is gone; only the files stay
            close()
            store.close()


@pytest.fixture(params=["disk", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "disk":
        yield Stores(tmp_path, None)
        return
    with postgres_schema() as url:
        yield Stores(tmp_path, url)


def every_crash_point(stores: Stores, operation: Callable[[MemAlignJudge], Any]) -> Iterator[int]:
    """Each n from 1 to the number of writes `operation` makes; the home is restored before each."""
    with stores.judge(counter := CrashAt(None)) as judge:
        before = snapshot(stores)
        operation(judge)
    total = counter.writes
    assert total > 3
    for n in range(1, total + 1):
        restore(stores, before)
        with stores.judge(CrashAt(n)) as judge:
            with pytest.raises(Crash):
                operation(judge)
        yield n


def snapshot(stores: Stores) -> Any:
    """The home's files (and for Postgres, a copy of the schema's tables), to start each crash alike."""
    files = {p: p.read_bytes() for p in stores.home.rglob("*") if p.is_file()}
    if stores.postgres_url:
        import psycopg

        with psycopg.connect(stores.postgres_url, autocommit=True) as connection:
            for table in PG_TABLES:
                connection.execute(f"DROP TABLE IF EXISTS saved_{table}")
                connection.execute(f"CREATE TABLE saved_{table} AS SELECT * FROM {table}")
    return files


PG_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


def restore(stores: Stores, files: dict[Path, bytes]) -> None:
    for path in [p for p in stores.home.rglob("*") if p.is_file()]:
        if path not in files:
            path.unlink()
    for path, data in files.items():
        path.write_bytes(data)
    if stores.postgres_url:
        import psycopg

        with psycopg.connect(stores.postgres_url, autocommit=True) as connection:
            for table in PG_TABLES:
                connection.execute(f"DELETE FROM {table}")
                connection.execute(f"INSERT INTO {table} SELECT * FROM saved_{table}")


def consistent(judge: MemAlignJudge) -> dict[str, str]:
    """The ledger's content hashes, after checking that the episodes hold the same content."""
    found = judge.verify()
    assert found.ok, found
    ledger = judge.memory.ledger()
    assert judge.episodic_store.fingerprints("support_tone", "default") == {
        key: record["content_hash"] for key, record in ledger.items()
    }
    return {key: record["content_hash"] for key, record in ledger.items()}


def test_a_crash_at_any_write_of_a_purge_loses_nothing_and_the_purge_can_be_finished(stores: Stores) -> None:
    with stores.judge() as judge:
        judge.align(
            [
                *feedback("r", 20),
                Feedback(
                    id="secret", inputs=f"I am {SECRET}", outputs="ok", value=False, rationale=f"Never say {SECRET}."
                ),
            ]
        )
        kept = {key: h for key, h in consistent(judge).items() if key != "secret"}
    lost = []
    for _ in every_crash_point(stores, lambda judge: judge.forget(["secret"], purge=True)):
        with stores.judge() as judge:  # the restarted process: memory is whole before anything runs
            memory = judge.memory.ledger()
            lost += sorted(kept.keys() - memory.keys())
            judge.repair()
            assert consistent(judge).keys() - {"secret"} == kept.keys()
            judge.forget(["secret"], purge=True)  # running the purge again finishes it
            assert consistent(judge) == kept and len(judge.history()) == 1
        if not stores.postgres_url:
            assert not [p for p in stores.home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert lost == []


def test_a_crash_at_any_write_of_a_rollback_leaves_one_version_or_the_other(stores: Stores) -> None:
    with stores.judge() as judge:
        judge.align(feedback("r", 20))
        first = consistent(judge)
        version = judge.history()[0]["checkpoint_id"]
        judge.align([*feedback("r", 5, value=False), *feedback("s", 10)])  # 5 corrected, 10 added
        second = consistent(judge)
    for _ in every_crash_point(stores, lambda judge: judge.rollback(version)):
        with stores.judge() as judge:
            judge.repair()  # finishes the rollback when it had begun
            assert consistent(judge) in (first, second)
            judge.rollback(version)
            assert consistent(judge) == first


def test_a_crash_at_any_write_of_an_alignment_keeps_the_old_feedback_and_all_or_none_of_the_new(
    stores: Stores,
) -> None:
    with stores.judge() as judge:
        judge.align(feedback("r", 20))
        old = consistent(judge)
    new = {item.feedback_id for item in feedback("s", 20)}
    for _ in every_crash_point(stores, lambda judge: judge.align(feedback("s", 20))):
        with stores.judge() as judge:
            judge.align([])  # finishes the alignment when it had begun
            held = consistent(judge)
            assert {key: held[key] for key in old} == old
            assert held.keys() - old.keys() in (set(), new)
