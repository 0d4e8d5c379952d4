"""The checkpointers that hold semantic memory: opening them, asking them cheap questions, compacting them.

SQLite (a file in the memory home) and Postgres are opened here; any other LangGraph saver works too,
with the slower generic path where a question below has no direct query.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from memalign_graph.errors import ConfigurationError

POSTGRES_EXTRA_HELP = "Semantic memory on Postgres needs the postgres extra: pip install 'memalign-graph[postgres]'."


def postgres_connection_help(error: Exception) -> str:
    return (
        f"Cannot connect to Postgres for semantic memory ({error}). Check MEMALIGN_POSTGRES_URL "
        "(e.g. postgresql://user:password@host:5432/dbname) and that the server is running."
    )


def is_saver(checkpointer: BaseCheckpointSaver[Any], class_name: str) -> bool:
    """Whether the saver is (or extends) LangGraph's saver of that name. Matched by name, so the optional
    Postgres and aiosqlite packages are not imported; subclasses, as a server may bring, count too."""
    return any(base.__name__ == class_name for base in type(checkpointer).__mro__)


def open_sqlite_checkpointer(path: Path) -> tuple[SqliteSaver, sqlite3.Connection]:
    """A SQLite checkpointer on a file (created if missing) and its connection, which the caller closes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False)
    return SqliteSaver(connection), connection


def open_postgres_checkpointer(url: str) -> tuple[BaseCheckpointSaver[Any], Callable[[], None]]:
    """A Postgres checkpointer (tables created if missing) and how to close it.

    Creating the tables runs under an advisory lock: two processes starting at once on a fresh database
    would otherwise race in LangGraph's migrations (one fails with a UniqueViolation).
    """
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row
    except ImportError as error:
        raise ConfigurationError(POSTGRES_EXTRA_HELP) from error
    try:
        connection = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except Exception as error:  # noqa: BLE001 - the driver's message names the cause
        raise ConfigurationError(postgres_connection_help(error)) from error
    saver = PostgresSaver(connection)
    if not _tables_current(connection, len(saver.MIGRATIONS)):
        _set_up_alone(connection, saver.setup)
    return saver, connection.close


def _tables_current(connection: Any, migrations: int) -> bool:
    """Whether LangGraph's checkpoint tables exist at their latest migration (then setup is skipped)."""
    found = connection.execute("SELECT to_regclass('checkpoint_migrations') AS t").fetchone()
    if found["t"] is None:
        return False
    latest = connection.execute("SELECT max(v) AS v FROM checkpoint_migrations").fetchone()
    return latest["v"] is not None and latest["v"] >= migrations - 1


def _set_up_alone(connection: Any, setup: Callable[[], None]) -> None:
    """Run the saver's setup while no other process does. The lock is taken by polling: a session waiting
    in `pg_advisory_lock` would hold a transaction open, and the setup's `CREATE INDEX CONCURRENTLY` in
    the lock holder waits for every open transaction (a deadlock Postgres reports)."""
    key = advisory_key("memalign-graph:checkpointer-setup")
    while not connection.execute("SELECT pg_try_advisory_lock(%s) AS ok", (key,)).fetchone()["ok"]:
        time.sleep(0.05)
    try:
        setup()
    finally:
        connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


def advisory_key(name: str) -> int:
    """A Postgres advisory lock key (a signed 64-bit integer) for a name."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


def postgres_conninfo(connection: object) -> str:
    """The connection string of a psycopg connection or pool, password included (psycopg hides it)."""
    conninfo = getattr(connection, "conninfo", None)  # a ConnectionPool keeps the string it was given
    if isinstance(conninfo, str):
        return conninfo
    from psycopg.conninfo import make_conninfo

    info = connection.info  # type: ignore[attr-defined]
    return str(make_conninfo(info.dsn, password=info.password)) if info.password else str(info.dsn)


def sqlite_file(saver: BaseCheckpointSaver[Any]) -> Path | None:
    """The database file of a SQLite saver, or None (another saver, or SQLite in memory)."""
    if not isinstance(saver, SqliteSaver) or not isinstance(saver.conn, sqlite3.Connection):
        return None
    name = saver.conn.execute("PRAGMA database_list").fetchone()[2]
    return Path(name) if name else None


_LATEST_SQL = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)


def latest_checkpoint_id(checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> str | None:
    """The id of a thread's latest checkpoint without loading it, or None where the saver cannot tell."""
    if isinstance(checkpointer, InMemorySaver):
        checkpoints = checkpointer.storage.get(thread_id, {}).get("", {})
        return max(checkpoints) if checkpoints else None
    if isinstance(checkpointer, SqliteSaver):
        with checkpointer.cursor(transaction=False) as cursor:
            cursor.execute(_LATEST_SQL.replace("%s", "?"), (thread_id,))
            row = cursor.fetchone()
        return row[0] if row else None
    if is_saver(checkpointer, "PostgresSaver"):
        with checkpointer._cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(_LATEST_SQL, (thread_id,))
            row = cursor.fetchone()
        return row["checkpoint_id"] if row else None
    return None


def has_async_reads(checkpointer: BaseCheckpointSaver[Any]) -> bool:
    """Whether the saver reads checkpoints with its own async code (SqliteSaver's async methods only raise)."""
    if isinstance(checkpointer, SqliteSaver) or is_saver(checkpointer, "PostgresSaver"):
        return False
    return type(checkpointer).aget_tuple is not BaseCheckpointSaver.aget_tuple


async def alatest_checkpoint_id(checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> str | None:
    """`latest_checkpoint_id` through an async saver's own connection, for the event loop."""
    if isinstance(checkpointer, InMemorySaver):
        return latest_checkpoint_id(checkpointer, thread_id)  # a dict lookup
    if is_saver(checkpointer, "AsyncSqliteSaver"):
        await checkpointer.setup()  # type: ignore[attr-defined]
        async with checkpointer.lock:  # type: ignore[attr-defined]
            rows = await checkpointer.conn.execute_fetchall(_LATEST_SQL.replace("%s", "?"), (thread_id,))  # type: ignore[attr-defined]
        return next(iter(rows))[0] if rows else None
    if is_saver(checkpointer, "AsyncPostgresSaver"):
        async with checkpointer._cursor() as cursor:  # type: ignore[attr-defined]
            await cursor.execute(_LATEST_SQL, (thread_id,))
            row = await cursor.fetchone()
        return row["checkpoint_id"] if row else None
    return None


def thread_ids(checkpointer: BaseCheckpointSaver[Any]) -> set[str]:
    """Every thread the saver holds (a purge looks through them for review threads of purged feedback)."""
    if isinstance(checkpointer, InMemorySaver):
        return set(checkpointer.storage)
    if isinstance(checkpointer, SqliteSaver):
        with checkpointer.cursor(transaction=False) as cursor:
            cursor.execute("SELECT DISTINCT thread_id FROM checkpoints")
            return {str(row[0]) for row in cursor.fetchall()}
    if is_saver(checkpointer, "PostgresSaver"):
        with checkpointer._cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SELECT DISTINCT thread_id FROM checkpoints")
            return {str(row["thread_id"]) for row in cursor.fetchall()}
    return {str(found.config["configurable"]["thread_id"]) for found in checkpointer.list(None)}


def compact(checkpointer: BaseCheckpointSaver[Any]) -> None:
    """Make deleted checkpoints unreadable from the files: SQLite rebuilds its file and empties its
    write-ahead log (where the old pages otherwise stay until the log is reused). A Postgres server
    reclaims dead rows with (auto)vacuum; a saver in memory has nothing left behind."""
    if sqlite_file(checkpointer) is None:
        return
    saver: SqliteSaver = checkpointer  # type: ignore[assignment]
    with saver.lock:
        saver.conn.commit()
        saver.conn.execute("VACUUM")
        saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
