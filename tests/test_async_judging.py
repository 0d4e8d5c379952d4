"""Async judging on the event loop: memory read through async savers, many judgments in one thread."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import traceback
from typing import Any

import pytest
from conftest import postgres_schema
from langgraph.checkpoint.memory import InMemorySaver

from fakes import ScriptedChatModel
from memalign_graph import Feedback, MemAlignJudge
from memalign_graph.memory.reader import CheckpointSemanticMemory, SharedProbe
from qdrant_rest import running_qdrant_rest

RULE = "Answer true when the text mentions {word}."


def teach(judge: MemAlignJudge, word: str) -> None:
    judge.align([Feedback(id=word, inputs=f"about {word}", outputs=word, value=True, rationale=RULE.format(word=word))])


def threads_left_since(before: set[int | None]) -> list[threading.Thread]:
    """Threads started since `before` that do not end: a closed aiosqlite thread ends moments after close."""
    started = [thread for thread in threading.enumerate() if thread.ident not in before]
    for thread in started:
        thread.join(timeout=120)  # a bound only: a thread that never ends fails the test instead of hanging it
    return [thread for thread in started if thread.is_alive()]


class SyncReadsRefused:
    """Wraps a sync saver's reads so a test fails if async judging falls back to them."""

    def __init__(self, judge: MemAlignJudge, monkeypatch: pytest.MonkeyPatch) -> None:
        saver = judge.checkpointer
        self.reads = 0

        def get_tuple(config: Any) -> Any:
            self.reads += 1
            return type(saver).get_tuple(saver, config)

        monkeypatch.setattr(saver, "get_tuple", get_tuple)


def test_async_judging_reads_memory_through_the_async_saver(make_judge, tone_spec, monkeypatch) -> None:
    judge = make_judge(tone_spec)
    teach(judge, "sorry")
    sync_reads = SyncReadsRefused(judge, monkeypatch)

    verdict = asyncio.run(judge.ajudge(inputs="late parcel", outputs="so sorry"))

    assert verdict["score"] is True and "sorry" in verdict["comment"]
    # InMemorySaver's async read is its sync read of a dict; SQLite and Postgres must not be read sync.
    assert sync_reads.reads == (1 if isinstance(judge.checkpointer, InMemorySaver) else 0)


def test_async_judging_sees_each_alignment_at_once(make_judge, tone_spec) -> None:
    """The guidelines cached by checkpoint id are dropped as soon as an alignment writes a new one."""
    judge = make_judge(tone_spec)

    async def judge_before_and_after_alignment() -> list[Any]:
        first = await judge.ajudge(inputs="q", outputs="thanks")
        await asyncio.to_thread(teach, judge, "thanks")  # another writer, while this loop keeps its connection
        second = await judge.ajudge(inputs="q", outputs="thanks")
        return [first["score"], second["score"]]

    assert asyncio.run(judge_before_and_after_alignment()) == [False, True]


def test_each_event_loop_gets_its_own_connection_closed_with_it(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    teach(judge, "sorry")
    before = {thread.ident for thread in threading.enumerate()}
    for _ in range(3):  # a connection kept from a finished loop would fail here
        assert asyncio.run(judge.ajudge(inputs="q", outputs="sorry"))["score"] is True
    assert threads_left_since(before) == []  # aiosqlite's thread went with its loop


def test_abatch_keeps_max_concurrency_judgments_in_flight_on_the_event_loop(make_judge, tone_spec) -> None:
    model = ScriptedChatModel(gather=16)  # the first sixteen judgments wait until sixteen are in flight
    judge = make_judge(tone_spec, model=model)
    teach(judge, "sorry")

    verdicts = asyncio.run(
        judge.abatch([{"inputs": f"q{n}", "outputs": "sorry"} for n in range(48)], max_concurrency=16)
    )

    assert [verdict["score"] for verdict in verdicts] == [True] * 48
    assert model.max_in_flight == 16
    assert {call["thread"] for call in model.calls_of("verdict")} == {threading.current_thread().name}


def test_async_context_manager_closes_the_loops_connection(backend, embeddings, model, tone_spec) -> None:
    async def use() -> MemAlignJudge:
        async with MemAlignJudge(tone_spec, model, embeddings=embeddings, **backend) as judge:
            await judge.ajudge(inputs="q", outputs="a")
            return judge

    judge = asyncio.run(use())
    assert judge._closers == []


def test_concurrent_reads_share_memory_queries_but_never_an_answer_older_than_themselves() -> None:
    probe = SharedProbe()
    queries: list[int] = []

    answer = asyncio.Event()  # queries stay in flight until every reader has asked: no timing involved

    async def latest_id() -> str:
        queries.append(1)
        number = str(len(queries))
        await answer.wait()
        return number

    async def main() -> tuple[str | None, list[str | None]]:
        first = asyncio.create_task(probe.ask(latest_id))
        while not queries:  # the first query is in flight: later arrivals may not reuse it
            await asyncio.sleep(0)
        later = [asyncio.create_task(probe.ask(latest_id)) for _ in range(20)]
        for _ in range(3):  # every later reader runs until it waits for the first query: each has asked
            await asyncio.sleep(0)
        answer.set()
        return await first, list(await asyncio.gather(*later))

    first, later = asyncio.run(main())
    assert first == "1" and later == ["2"] * 20
    assert len(queries) == 2


def test_on_postgres_and_a_qdrant_server_async_judging_uses_no_worker_thread(
    tone_spec, embeddings, tmp_path, monkeypatch
) -> None:
    """The scale-out stack's judging path: psycopg's async connection and AsyncQdrantClient, both awaited.

    Loading a new version of memory is the exception: LangGraph's AsyncPostgresSaver deserializes a
    checkpoint's pending writes in a worker thread. Every judgment after that reads by checkpoint id.
    """
    model = ScriptedChatModel()
    asked: list[str] = []

    def record(original: Any) -> Any:
        def asking(*args: Any, **kwargs: Any) -> Any:
            asked.append("".join(traceback.format_stack(limit=14)))
            return original(*args, **kwargs)

        return asking

    with running_qdrant_rest() as qdrant_url, postgres_schema() as postgres_url:
        judge = MemAlignJudge(
            tone_spec, model, embeddings=embeddings, home=tmp_path, qdrant_url=qdrant_url, postgres_url=postgres_url
        )
        teach(judge, "sorry")

        async def judge_many() -> list[Any]:
            async with judge:
                await judge.ajudge(inputs="q", outputs="sorry")  # loads this version of memory
                model.gather = judge.max_concurrency  # the batch's first judgments wait for each other
                monkeypatch.setattr(
                    asyncio.BaseEventLoop, "run_in_executor", record(asyncio.BaseEventLoop.run_in_executor)
                )
                monkeypatch.setattr(threading.Thread, "start", record(threading.Thread.start))
                try:
                    return await judge.abatch([{"inputs": f"q{n}", "outputs": "sorry"} for n in range(48)])
                finally:
                    monkeypatch.undo()

        verdicts = asyncio.run(judge_many())

    assert asked == [], asked[0]
    assert [verdict["score"] for verdict in verdicts] == [True] * 48
    assert all(verdict["metadata"]["episode_ids"] == ["sorry"] for verdict in verdicts)
    assert model.max_in_flight == judge.max_concurrency


def test_a_hand_made_loop_closed_without_shutdown_leaves_nothing_after_close(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    before = {thread.ident for thread in threading.enumerate()}
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(judge.ajudge(inputs="q", outputs="a"))["score"] is False
    loop.close()  # no shutdown_asyncgens: the loop never closed its connection itself
    judge.close()
    assert threads_left_since(before) == []


def test_a_script_that_never_closes_its_judge_still_exits(tmp_path) -> None:
    script = f"""
import asyncio
from memalign_graph import Boolean, JudgeSpec, MemAlignJudge
spec = JudgeSpec(name="j", instructions="ok?", output=Boolean())
judge = MemAlignJudge(spec, "fake", embeddings="fake", home={str(tmp_path)!r})
loop = asyncio.new_event_loop()
print(loop.run_until_complete(judge.ajudge(inputs="q", outputs="a"))["score"])
loop.close()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_servers_own_postgres_saver_is_read_by_checkpoint_id_too(tone_spec, model, embeddings, tmp_path) -> None:
    """A saver extending LangGraph's AsyncPostgresSaver (as a server may bring) gets the cheap id query:
    the guidelines are loaded once per version of memory, not once per judgment."""
    pytest.importorskip("langgraph.checkpoint.postgres")
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection
    from psycopg.rows import dict_row

    with postgres_schema() as url:
        with MemAlignJudge(tone_spec, model, embeddings=embeddings, home=tmp_path, postgres_url=url) as judge:
            teach(judge, "sorry")

        class ServerSaver(AsyncPostgresSaver):
            loads = 0

            async def aget_tuple(self, config: Any) -> Any:
                ServerSaver.loads += 1
                return await super().aget_tuple(config)

        async def read_three_times() -> list[str]:
            connection = await AsyncConnection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
            async with connection:
                memory = CheckpointSemanticMemory(ServerSaver(connection))
                return [(await memory.aread("support_tone", "default")).guidelines[0]["text"] for _ in range(3)]

        assert asyncio.run(read_three_times()) == [RULE.format(word="sorry")] * 3
        assert ServerSaver.loads == 1
