"""The Qdrant episodic store: stable ids, isolation, reopening, and one writer per local store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes import BagOfWordsEmbeddings
from memalign_graph import EpisodicStoreError, QdrantEpisodicStore
from memalign_graph.episodic import collection_name, point_id
from memalign_graph.state import FeedbackRecord
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


@pytest.fixture(params=["memory", "disk", "disk-shared", "rest-double", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QdrantEpisodicStore]:
    """The contract every layout and engine must keep: local mode, the client's HTTP path against the
    REST double (tests/qdrant_rest.py), and a real Qdrant server when QDRANT_URL is set."""
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
            "import sys, time\nfrom qdrant_client import QdrantClient\n"
            f"c = QdrantClient(path={str(tmp_path / 'q')!r})\nprint('ready', flush=True)\ntime.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
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
