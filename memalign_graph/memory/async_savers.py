"""The async twins of semantic memory's checkpointers, for judging on the event loop.

Alignment writes memory through a sync saver (it runs in one place, under a lock). Async judging reads
the same database through an async saver on its own connection, one per event loop (`PerLoop`), so a
process serving many concurrent judgments reads memory without a worker thread per read.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from memalign_graph.errors import ConfigurationError
from memalign_graph.memory.savers import (
    POSTGRES_EXTRA_HELP,
    is_saver,
    postgres_connection_help,
    postgres_conninfo,
    sqlite_file,
)
from memalign_graph.per_loop import PerLoop


def async_sqlite_checkpointer(path: str | Path) -> PerLoop[BaseCheckpointSaver]:
    """`AsyncSqliteSaver`s on the SQLite file a `SqliteSaver` writes. aiosqlite runs each connection
    in one thread of its own (SQLite has no async driver); reads queue there, not in a thread pool."""

    async def open_() -> BaseCheckpointSaver:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        connection = aiosqlite.connect(str(path))
        worker = getattr(connection, "_thread", None)  # started by the await below
        if isinstance(worker, threading.Thread):
            # A reader's thread must not keep the process alive: aiosqlite's is not a daemon, so a loop
            # closed without `shutdown_asyncgens` and a judge never closed would hang the exit.
            worker.daemon = True
        saver = AsyncSqliteSaver(await connection)
        await saver.setup()
        return saver

    return PerLoop(open_, _close_connection)


def async_postgres_checkpointer(url: str) -> PerLoop[BaseCheckpointSaver]:
    """`AsyncPostgresSaver`s on psycopg's async connection: reads are awaited on the loop itself."""

    async def open_() -> BaseCheckpointSaver:
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
            from psycopg import AsyncConnection
            from psycopg.rows import dict_row
        except ImportError as error:
            raise ConfigurationError(POSTGRES_EXTRA_HELP) from error
        try:
            connection = await AsyncConnection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        except Exception as error:  # noqa: BLE001 - the driver's message names the cause
            raise ConfigurationError(postgres_connection_help(error)) from error
        return AsyncPostgresSaver(connection)  # tables exist: the sync saver set them up

    return PerLoop(open_, _close_connection)


async def _close_connection(saver: BaseCheckpointSaver) -> None:
    await saver.conn.close()  # type: ignore[attr-defined]


def async_twin(saver: BaseCheckpointSaver[Any]) -> PerLoop[BaseCheckpointSaver[Any]] | None:
    """The async savers on the database a sync saver writes, or None where none is needed or possible.

    SQLite on a file and Postgres (a connection or a pool) get a twin. InMemorySaver reads natively
    in async code; any other saver is read in a worker thread.
    """
    path = sqlite_file(saver)
    if path is not None:
        return async_sqlite_checkpointer(path)
    if is_saver(saver, "PostgresSaver"):
        return async_postgres_checkpointer(postgres_conninfo(saver.conn))  # type: ignore[attr-defined]
    return None
