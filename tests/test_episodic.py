"""The Qdrant episodic store: stable ids, isolation, reopening, one writer per local store, async search."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient

from fakes import BagOfWordsEmbeddings
from memalign_graph import EpisodicStoreError, QdrantEpisodicStore
from memalign_graph.memory import qdrant_clients
from memalign_graph.memory.episodic import point_id
from memalign_graph.memory.qdrant_store import collection_name
from memalign_graph.records import FeedbackRecord
from qdrant_rest import running_qdrant_rest

EMBED = BagOfWordsEmbeddings()


def record(feedback_id: str, inputs: str, value: Any = True) -> FeedbackRecord:
    return FeedbackRecord(
        id=feedback_id,
        inputs=inputs,
        outputs="reply",
        expectations=None,
        value=value,
        rationale="why",
        judge_verdict=not value,
        judge_was_wrong=True,
        content_hash=f"h-{feedback_id}-{value}",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
        distilled=True,
    )


def put(store: QdrantEpisodicStore, judge: str, namespace: str, *records: FeedbackRecord) -> None:
    texts = [r["inputs"] for r in records]
    store.upsert(judge, namespace, list(records), texts, EMBED.embed_documents(texts))


@pytest.fixture(params=["memory", "disk", "disk-shared", "rest-double", "server", "edge"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QdrantEpisodicStore]:
    """The contract every layout and engine must keep: local mode, the client's HTTP path against the
    REST double (tests/qdrant_rest.py), a real Qdrant server when QDRANT_URL is set, and Qdrant's embedded
    engine (the `edge` extra)."""
    if request.param == "edge":
        edge_store = pytest.importorskip("memalign_graph.memory.edge_store", reason="the edge extra is not installed")
        with edge_store.EdgeEpisodicStore(path=tmp_path / "edge") as edge:
            yield edge  # type: ignore[misc]  # the same protocol, another class
        return
    if request.param == "rest-double":
        with running_qdrant_rest() as url, QdrantEpisodicStore(url=url) as opened:
            yield opened
        return
    if request.param == "server":
        url = os.environ.get("QDRANT_URL")
        if not url:
            pytest.skip("no Qdrant server: set QDRANT_URL=http://host:6333 to run the episodic contract against it")
        opened = QdrantEpisodicStore(
            url=url, api_key=os.environ.get("QDRANT_API_KEY"), collection=f"memalign_test_{uuid.uuid4().hex[:8]}"
        )
        yield opened
        opened.client.delete_collection(opened._shared_collection)
        opened.close()
        return
    if request.param == "memory":
        opened = QdrantEpisodicStore()
    elif request.param == "disk":
        opened = QdrantEpisodicStore(path=tmp_path / "q")
    else:
        opened = QdrantEpisodicStore(path=tmp_path / "q", layout="shared")
    yield opened
    opened.close()


def test_a_server_uses_one_shared_collection_with_tenant_indexes() -> None:
    with QdrantEpisodicStore(url="http://127.0.0.1:1") as remote, QdrantEpisodicStore() as local:
        assert remote.layout == "shared" and local.layout == "collection_per_judge"
    with pytest.raises(ValueError, match="layout"):
        QdrantEpisodicStore(layout="flat")  # type: ignore[arg-type]


def test_the_shared_layout_keeps_every_tenant_in_one_collection(tmp_path: Path) -> None:
    with QdrantEpisodicStore(path=tmp_path / "q", layout="shared") as shared:
        put(shared, "a", "ns1", record("1", "x"))
        put(shared, "b", "ns2", record("1", "x"))
        assert [c.name for c in shared.client.get_collections().collections] == ["memalign_episodes"]
        assert shared.client.count("memalign_episodes").count == 2 and shared.count("a", "ns1") == 1


@pytest.mark.parametrize("store", ["rest-double", "server"], indirect=True)  # local mode has no HNSW graph
def test_a_servers_shared_collection_gets_tenant_indexes_and_a_graph_per_tenant(store: QdrantEpisodicStore) -> None:
    """Qdrant's multitenancy advice for collections only ever searched within one tenant."""
    put(store, "j", "ns", record("1", "x"))
    put(store, "j", "ns", record("2", "y"))  # the collection exists now: created once, indexes asked once
    info = store.client.get_collection(store._shared_collection)
    assert (info.config.hnsw_config.m, info.config.hnsw_config.payload_m) == (0, 16)
    if os.environ.get("QDRANT_URL"):  # the double accepts payload indexes without keeping them
        schema = info.payload_schema
        assert all(schema[key].params.is_tenant for key in ("metadata.namespace", "metadata.judge"))


def test_ids_are_stable_and_names_unique() -> None:
    assert point_id("j", "ns", "fb-1") == point_id("j", "ns", "fb-1")
    assert point_id("j", "ns", "fb-1") != point_id("j", "other", "fb-1")
    # '_' may appear in names; the hash keeps ('a_b', 'c') and ('a', 'b_c') apart.
    assert collection_name("c", "a_b") != collection_name("b_c", "a")


def test_search_returns_nearest_first_with_payload(store: QdrantEpisodicStore) -> None:
    put(store, "j", "ns", record("1", "refund for a double charge"), record("2", "parcel is late"))
    hits = store.search("j", "ns", EMBED.embed_query("double charge refund please"), k=5)
    assert [hit["feedback_id"] for hit in hits] == ["1", "2"]
    assert hits[0]["rationale"] == "why" and hits[0]["judge_was_wrong"] is True
    assert hits[0]["similarity"] > hits[1]["similarity"]


def test_repeated_feedback_overwrites(store: QdrantEpisodicStore) -> None:
    put(store, "j", "ns", record("1", "refund", value=True))
    put(store, "j", "ns", record("1", "refund", value=False))
    assert store.count("j", "ns") == 1
    assert store.search("j", "ns", EMBED.embed_query("refund"), k=5)[0]["value"] is False


def test_judges_and_namespaces_never_see_each_other(store: QdrantEpisodicStore) -> None:
    put(store, "a", "ns1", record("1", "shared words"))
    put(store, "b", "ns1", record("2", "shared words"))
    put(store, "a", "ns2", record("3", "shared words"))
    query = EMBED.embed_query("shared words")
    assert [h["feedback_id"] for h in store.search("a", "ns1", query, 10)] == ["1"]
    assert [h["feedback_id"] for h in store.search("b", "ns1", query, 10)] == ["2"]
    assert [h["feedback_id"] for h in store.search("a", "ns2", query, 10)] == ["3"]
    store.delete("a", "ns1", ["2", "3"])  # other judges' ids: nothing of theirs goes
    assert store.feedback_ids("b", "ns1") == {"2"} and store.feedback_ids("a", "ns2") == {"3"}
    store.delete("a", "ns1", ["1"])
    assert store.feedback_ids("a", "ns1") == set()


def test_empty_store_answers_empty(store: QdrantEpisodicStore) -> None:
    assert store.search("nobody", "ns", EMBED.embed_query("x"), 5) == []
    assert store.feedback_ids("nobody", "ns") == set()
    store.delete("nobody", "ns", ["x"])


def test_dimension_mismatch_is_a_clear_error(store: QdrantEpisodicStore) -> None:
    put(store, "j", "ns", record("1", "text"))
    with pytest.raises(EpisodicStoreError, match="256-dimensional vectors but the embedding model gives 3"):
        store.search("j", "ns", [0.1, 0.2, 0.3], 5)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Local mode loses points when two threads upsert at once; the store's writer lock prevents it."""
    store = QdrantEpisodicStore(path=tmp_path / "q")
    try:

        def write(offset: int) -> None:
            for index in range(offset, offset + 100):
                put(store, "j", "ns", record(f"fb-{index}", f"text {index}"))

        threads = [threading.Thread(target=write, args=(offset,)) for offset in (0, 100, 200, 300)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.count("j", "ns") == 400
    finally:
        store.close()


def test_stores_on_one_path_share_a_client(tmp_path: Path) -> None:
    first = QdrantEpisodicStore(path=tmp_path / "q")
    second = QdrantEpisodicStore(path=tmp_path / "q")
    put(first, "j", "ns", record("1", "text"))
    assert second.feedback_ids("j", "ns") == {"1"}
    first.close()
    assert second.count("j", "ns") == 1  # still open: the client closes with its last user
    second.close()


def test_reopen_in_a_new_process_restores_exactly(tmp_path: Path) -> None:
    store = QdrantEpisodicStore(path=tmp_path / "q")
    put(store, "j", "ns", record("1", "one"), record("2", "two"))
    store.close()
    code = (
        "from memalign_graph import QdrantEpisodicStore\n"
        f"s = QdrantEpisodicStore(path={str(tmp_path / 'q')!r})\n"
        "print(sorted(s.feedback_ids('j', 'ns')), s.count('j', 'ns'))\n"
        "s.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['1', '2'] 2"


def test_a_path_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom qdrant_client import QdrantClient\n"
            f"c = QdrantClient(path={str(tmp_path / 'q')!r})\nprint('ready', flush=True)\nsys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # it holds the path until told to go (a line on its stdin), however slow the machine
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(EpisodicStoreError, match=str(tmp_path / "q")):
            QdrantEpisodicStore(path=tmp_path / "q")
    finally:
        holder.kill()
        holder.wait()


def test_local_mode_journals_ahead_and_survives_a_reopen(tmp_path: Path) -> None:
    """Writes go to a write-ahead log (no fsync per point); nothing is lost when the store is reopened."""
    store = QdrantEpisodicStore(path=tmp_path / "q")
    put(store, "j", "ns", *[record(f"fb-{n}", f"text {n}") for n in range(50)])
    [collection] = store.client._client.collections.values()
    assert collection.storage.storage.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.close()
    with QdrantEpisodicStore(path=tmp_path / "q") as reopened:
        assert reopened.count("j", "ns") == 50


# Async search: native on a server (AsyncQdrantClient, one per event loop), inline in local mode.

QUERIES = ["refund for a double charge", "parcel is late", "password reset link", "shared words"]


def fill(store: QdrantEpisodicStore) -> None:
    put(store, "j", "ns", *[record(str(n), text) for n, text in enumerate(QUERIES)])


def sockets() -> int:
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed while listing
    return found


def settled(expected: int) -> int:
    """The socket count once the double's thread has closed its ends of closed connections (it does so on
    its own schedule: look until it has, with a bound only so a leak fails instead of hanging)."""
    deadline = time.monotonic() + 120
    while sockets() > expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return sockets()


@pytest.fixture
def keepalive_url() -> Iterator[str]:
    """The REST double; clients below keep connections alive, as they do to a remote server (qdrant-client
    turns keep-alive off for 127.0.0.1 unless given `limits`), so a connection left open would show."""
    with running_qdrant_rest() as url:
        yield url


@pytest.fixture
def server_store(keepalive_url: str) -> Iterator[QdrantEpisodicStore]:
    client = QdrantClient(url=keepalive_url, limits=httpx.Limits(max_keepalive_connections=8))
    with QdrantEpisodicStore(client=client) as store:
        yield store
    client.close()  # given, so not the store's to close


def test_asearch_finds_what_search_finds(store: QdrantEpisodicStore) -> None:
    fill(store)

    async def both() -> list[tuple[list[Any], list[Any]]]:
        pairs = []
        for text in QUERIES + ["nothing like it"]:
            vector = EMBED.embed_query(text)
            pairs.append((await store.asearch("j", "ns", vector, 3), store.search("j", "ns", vector, 3)))
        pairs.append((await store.asearch("nobody", "ns", EMBED.embed_query("x"), 3), []))
        pairs.append((await store.asearch("j", "ns", EMBED.embed_query("x"), 0), []))
        return pairs

    for found, expected in asyncio.run(both()):
        assert found == expected
    with pytest.raises(EpisodicStoreError, match="256-dimensional vectors but the embedding model gives 3"):
        asyncio.run(store.asearch("j", "ns", [0.1, 0.2, 0.3], 5))


def test_asearch_on_a_server_awaits_the_async_client_with_no_thread_or_sync_call(
    server_store: QdrantEpisodicStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = server_store
    fill(store)
    expected = store.search("j", "ns", EMBED.embed_query(QUERIES[0]), 2)
    store._dimensions.clear()  # so asearch asks the server for the collection again
    store._known_collections.clear()
    queried = []
    original = AsyncQdrantClient.query_points

    async def spy(self: AsyncQdrantClient, *args: Any, **kwargs: Any) -> Any:
        queried.append(kwargs["collection_name"])
        return await original(self, *args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("asearch used a worker thread or a blocking request")

    async def search() -> tuple[list[Any], set[str]]:
        before = {thread.name for thread in threading.enumerate()}
        found = await store.asearch("j", "ns", EMBED.embed_query(QUERIES[0]), 2)
        return found, {thread.name for thread in threading.enumerate()} - before

    with monkeypatch.context() as patch:
        patch.setattr(AsyncQdrantClient, "query_points", spy)
        patch.setattr(asyncio, "to_thread", refuse)
        patch.setattr(asyncio.BaseEventLoop, "run_in_executor", refuse)
        patch.setattr(threading.Thread, "start", refuse)
        patch.setattr(httpx.Client, "send", refuse)  # the sync client's transport
        found, new_threads = asyncio.run(search())
    assert found == expected and new_threads == set() and len(queried) == 1


def test_each_event_loop_gets_its_own_client_closed_with_the_loop(
    server_store: QdrantEpisodicStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[AsyncQdrantClient] = []

    class Counted(AsyncQdrantClient):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            opened.append(self)

    monkeypatch.setattr(qdrant_clients, "AsyncQdrantClient", Counted)
    store = server_store
    fill(store)

    async def search() -> list[str]:
        hits = await store.asearch("j", "ns", EMBED.embed_query(QUERIES[1]), 1)
        return [hit["feedback_id"] for hit in hits]

    # Two asyncio.run calls: a client kept from the first loop would fail on the second.
    assert asyncio.run(search()) == asyncio.run(search()) == ["1"]
    assert len(opened) == 2 and all(client._client.closed for client in opened)

    async def search_then_close() -> list[str]:
        found = await search()
        await store.aclose()
        return found + await search()  # a later asearch on the same loop opens another

    assert asyncio.run(search_then_close()) == ["1", "1"]
    assert len(opened) == 4 and all(client._client.closed for client in opened)


def test_many_concurrent_asearches_are_each_right(server_store: QdrantEpisodicStore) -> None:
    store = server_store
    fill(store)
    texts = [QUERIES[n % len(QUERIES)] for n in range(50)]

    async def many() -> list[list[Any]]:
        return await asyncio.gather(*(store.asearch("j", "ns", EMBED.embed_query(text), 2) for text in texts))

    found = asyncio.run(many())
    assert found == [store.search("j", "ns", EMBED.embed_query(text), 2) for text in texts]
    assert [hits[0]["feedback_id"] for hits in found] == [str(n % len(QUERIES)) for n in range(50)]


def test_close_leaves_no_socket_or_thread(keepalive_url: str) -> None:
    gc.collect()
    threads_before, sockets_before = set(threading.enumerate()), sockets()
    client = QdrantClient(url=keepalive_url, limits=httpx.Limits(max_keepalive_connections=8))
    store = QdrantEpisodicStore(client=client)
    fill(store)

    async def many() -> None:
        await asyncio.gather(*(store.asearch("j", "ns", EMBED.embed_query(text), 2) for text in QUERIES * 5))

    asyncio.run(many())  # this loop's client closes as asyncio.run shuts the loop down
    loop = asyncio.new_event_loop()
    loop.run_until_complete(many())  # this one is still open when the store closes
    bare = asyncio.new_event_loop()
    bare.run_until_complete(many())
    bare.close()  # closed without asyncio.run's shutdown: its client is left for close() to drop
    assert settled(sockets_before) > sockets_before  # the kept-alive connections are visible here
    store.close()
    client.close()
    loop.close()
    gc.collect()
    assert settled(sockets_before) <= sockets_before
    assert set(threading.enumerate()) <= threads_before


def test_an_unreachable_server_is_a_clear_error_from_asearch() -> None:
    with QdrantEpisodicStore(url="http://127.0.0.1:1") as store:
        with pytest.raises(EpisodicStoreError, match=r"Qdrant at http://127.0.0.1:1 failed.*MEMALIGN_QDRANT_URL"):
            asyncio.run(store.asearch("j", "ns", EMBED.embed_query("x"), 3))


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_the_api_key_is_sent_and_a_missing_one_is_refused_clearly() -> None:
    with running_qdrant_rest(api_key="s3cret") as url:
        with QdrantEpisodicStore(url=url, api_key="s3cret") as keyed:
            fill(keyed)
            hits = asyncio.run(keyed.asearch("j", "ns", EMBED.embed_query(QUERIES[2]), 1))
            assert [hit["feedback_id"] for hit in hits] == ["2"]
        with QdrantEpisodicStore(url=url) as keyless:
            with pytest.raises(EpisodicStoreError, match=rf"(?s)Qdrant at {url} failed.*401.*Must provide an API key"):
                asyncio.run(keyless.asearch("j", "ns", EMBED.embed_query("x"), 1))
        with QdrantEpisodicStore(url=url, api_key="wrong") as wrong:
            with pytest.raises(EpisodicStoreError, match="403"):
                wrong.search("j", "ns", EMBED.embed_query("x"), 1)


def test_a_given_async_client_is_used_and_left_open(keepalive_url: str) -> None:
    with pytest.raises(ValueError, match="async_client= goes with client="):
        QdrantEpisodicStore(async_client=AsyncQdrantClient(url=keepalive_url, check_compatibility=False))

    async def run() -> list[Any]:
        mine = AsyncQdrantClient(url=keepalive_url, check_compatibility=False)
        sync = QdrantClient(url=keepalive_url)
        store = QdrantEpisodicStore(client=sync, async_client=mine)
        fill(store)
        hits = await store.asearch("j", "ns", EMBED.embed_query(QUERIES[3]), 1)
        store.close()
        assert (await mine.get_collections()).collections  # still open: it is the caller's
        await mine.close()
        sync.close()
        return hits

    assert [hit["feedback_id"] for hit in asyncio.run(run())] == ["3"]


def test_asearch_after_close_is_a_clear_error(keepalive_url: str) -> None:
    store = QdrantEpisodicStore(url=keepalive_url)
    store.close()
    with pytest.raises(EpisodicStoreError, match="is closed"):
        asyncio.run(store.asearch("j", "ns", EMBED.embed_query("x"), 1))
