"""One async connection per running event loop, closed when that loop ends.

Async drivers (aiosqlite, psycopg, httpx) bind a connection to the event loop that opened it, and
people call `asyncio.run(...)` more than once in a process: a connection kept from an earlier loop
fails on the next. So async connections are opened lazily, once per loop, and closed as that loop
shuts down: each is held by an async generator, whose `finally` asyncio runs on the loop itself
when `asyncio.run` (or any runner calling `shutdown_asyncgens`) finishes. Nothing is left behind,
not even aiosqlite's worker thread, which would otherwise keep the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """Lazily opens one `T` for each running event loop; closes it with the loop, or on `close()`."""

    def __init__(self, open_: Callable[[], Awaitable[T]], close: Callable[[T], Coroutine[Any, Any, None]]) -> None:
        self._open = open_
        self._close = close
        self._opened: dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]] = {}
        self._opening: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._lock = threading.Lock()

    async def get(self) -> T:
        """This loop's connection, opened on first use (concurrent first users share one open)."""
        loop = asyncio.get_running_loop()
        held = self._opened.get(loop)
        if held is not None:
            return held[0]
        with self._lock:
            opening = self._opening.setdefault(loop, asyncio.Lock())
        async with opening:
            held = self._opened.get(loop)
            if held is None:
                connection = await self._open()
                keeper = self._keep(loop, connection)
                await keeper.__anext__()  # registers it with the loop, which closes it at shutdown
                held = self._opened[loop] = (connection, keeper)
            return held[0]

    async def _keep(self, loop: asyncio.AbstractEventLoop, connection: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                self._opened.pop(loop, None)
                self._opening.pop(loop, None)
            await self._close(connection)

    async def aclose(self) -> None:
        """Close the running loop's connection now."""
        held = self._opened.get(asyncio.get_running_loop())
        if held is not None:
            await held[1].aclose()

    def close(self) -> None:
        """Close every connection: on its own loop while that loop lives, else on a short-lived one."""
        with self._lock:
            held = list(self._opened.items())
        for loop, (connection, keeper) in held:
            if loop.is_closed():
                # Closed without `shutdown_asyncgens` (a hand-made loop): close on a loop of our own.
                with self._lock:
                    self._opened.pop(loop, None)
                    self._opening.pop(loop, None)
                if _running_loop() is None:
                    asyncio.run(self._close(connection))
            elif loop.is_running():
                if _running_loop() is loop:
                    loop.create_task(keeper.aclose())
                else:
                    asyncio.run_coroutine_threadsafe(keeper.aclose(), loop).result(timeout=10)
            else:
                loop.run_until_complete(keeper.aclose())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
