"""Episodic memory on Qdrant's embedded engine: tenant indexes, its own write-ahead log, one writer, one
process, indexing, compaction that leaves no forgotten byte, and how a memory folder chooses and moves to it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("qdrant_edge", reason="the edge extra is not installed: pip install 'memalign-graph[edge]'")

from test_episodic import EMBED, put, record
from test_migration import EXAMPLE, seed, working_memory

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import (
    Boolean,
    ConfigurationError,
    EpisodicStoreError,
    JudgeSpec,
    MemAlignJudge,
    QdrantEpisodicStore,
)
from memalign_graph.config import episodic_engine, open_episodic_store
from memalign_graph.memory import edge_shards, engines
from memalign_graph.memory.edge_store import EdgeEpisodicStore
from memalign_graph.memory.episodic import point_id


def test_every_call_is_filtered_through_tenant_payload_indexes(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e") as store:
        put(store, "a", "ns1", record("1", "shared words"))  # type: ignore[arg-type]
        put(store, "b", "ns2", record("1", "shared words"))  # type: ignore[arg-type]
        shard = store._shared.shard
        assert shard is not None
        schema = shard.info().payload_schema
        assert all(schema[key].params.is_tenant for key in ("metadata.namespace", "metadata.judge"))
        assert shard.info().points_count == 2 and store.count("a", "ns1") == 1
        [hit] = store.search("a", "ns1", EMBED.embed_query("shared words"), 5)
        assert hit["feedback_id"] == "1" and store.episodes("b", "ns2", 5)[0]["namespace"] == "ns2"


def test_points_keep_the_qdrant_stores_ids_and_payload_layout(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e") as edge, QdrantEpisodicStore() as local:
        for store in (edge, local):
            put(store, "j", "ns", record("fb-1", "refund please"))  # type: ignore[arg-type]
        assert edge.vectors("j", "ns") == local.vectors("j", "ns")
        assert edge.fingerprints("j", "ns") == local.fingerprints("j", "ns")
        shard = edge._shared.shard
        assert shard is not None
        [stored] = shard.retrieve([point_id("j", "ns", "fb-1")], True, False)
        assert set(stored.payload or {}) == {"page_content", "metadata"}


def test_the_write_ahead_log_is_on_and_locks_the_folder_to_one_process(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e") as store:
        put(store, "j", "ns", record("1", "one"))  # type: ignore[arg-type]
        assert (tmp_path / "e" / "wal").is_dir() and edge_shards.shard_config(3).wal_enabled is True
        code = (
            "from memalign_graph.memory.edge_store import EdgeEpisodicStore\n"
            f"EdgeEpisodicStore(path={str(tmp_path / 'e')!r})\n"
        )
        failed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert failed.returncode != 0 and "another process holds it" in failed.stderr
        assert str(tmp_path / "e") in failed.stderr


def test_a_new_process_reopens_what_was_written(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e") as store:
        put(store, "j", "ns", record("1", "one"), record("2", "two"))  # type: ignore[arg-type]
    code = (
        "from memalign_graph.memory.edge_store import EdgeEpisodicStore\n"
        f"s = EdgeEpisodicStore(path={str(tmp_path / 'e')!r})\n"
        "print(sorted(s.feedback_ids('j', 'ns')), s.count('j', 'ns'))\n"
        "s.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['1', '2'] 2"


def test_concurrent_writers_lose_nothing_and_stores_on_one_folder_share_the_shard(tmp_path: Path) -> None:
    first, second = EdgeEpisodicStore(path=tmp_path / "e"), EdgeEpisodicStore(path=tmp_path / "e")
    start = threading.Barrier(4)

    def write(offset: int) -> None:
        start.wait()
        for index in range(offset, offset + 50):
            put(first if index % 2 else second, "j", "ns", record(f"fb-{index}", f"text {index}"))  # type: ignore[arg-type]

    threads = [threading.Thread(target=write, args=(offset,)) for offset in (0, 50, 100, 150)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first._shared is second._shared and first.count("j", "ns") == 200
    first.close()
    assert second.count("j", "ns") == 200  # still open: the shard closes with its last user
    second.close()


def test_enough_new_points_build_the_index_and_search_stays_right(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e", index_after=40) as store:
        put(store, "j", "ns", *[record(f"fb-{n}", f"ticket {n} about topic {n % 7}") for n in range(39)])  # type: ignore[arg-type]
        shard = store._shared.shard
        assert shard is not None and shard.info().indexed_vectors_count == 0
        put(store, "j", "ns", record("fb-39", "ticket 39 about a parcel"))  # type: ignore[arg-type]
        assert shard.info().points_count == 40
        assert store.search("j", "ns", EMBED.embed_query("ticket 39 about a parcel"), 1)[0]["feedback_id"] == "fb-39"
        assert store.optimize() is False  # nothing left to do
    with pytest.raises(ValueError, match="index_after"):
        EdgeEpisodicStore(path=tmp_path / "x", index_after=0)


def files_holding(folder: Path, text: str) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


def test_compaction_leaves_no_byte_of_a_forgotten_record(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e") as store:
        put(store, "j", "ns", record("1", "keep this one"), record("2", "erase-me-zq81 entirely"))  # type: ignore[arg-type]
        put(store, "k", "ns", record("3", "another judge"))  # type: ignore[arg-type]
        store.delete("j", "ns", ["2"])
        assert files_holding(tmp_path / "e", "erase-me-zq81")  # deleted, but its bytes are still there
        store.compact("j", "ns")
        assert files_holding(tmp_path / "e", "erase-me-zq81") == []
        assert store.feedback_ids("j", "ns") == {"1"} and store.feedback_ids("k", "ns") == {"3"}
        put(store, "j", "ns", record("4", "written after"))  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]  # nothing left beside it
    with EdgeEpisodicStore(path=tmp_path / "e") as reopened:
        assert reopened.feedback_ids("j", "ns") == {"1", "4"}


def test_a_compaction_killed_mid_swap_is_undone_on_open(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e") as store:
        put(store, "j", "ns", record("1", "one"))  # type: ignore[arg-type]
    (tmp_path / "e").rename(tmp_path / "e.old")  # killed between its two renames
    (tmp_path / "e.compacting").mkdir()
    with EdgeEpisodicStore(path=tmp_path / "e") as reopened:
        assert reopened.feedback_ids("j", "ns") == {"1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_one_shard_holds_one_vector_size(tmp_path: Path) -> None:
    with EdgeEpisodicStore(path=tmp_path / "e") as store:
        put(store, "j", "ns", record("1", "text"))  # type: ignore[arg-type]
        with pytest.raises(EpisodicStoreError, match="256-dimensional vectors but the embedding model gives 3"):
            store.upsert("other", "ns", [record("2", "x")], ["x"], [[0.1, 0.2, 0.3]])


def test_a_closed_store_is_a_clear_error() -> None:
    store = EdgeEpisodicStore()  # a temporary folder, removed on close
    folder = store.path
    put(store, "j", "ns", record("1", "one"))  # type: ignore[arg-type]
    store.close()
    assert not folder.exists()
    with pytest.raises(EpisodicStoreError, match="is closed"):
        store.search("j", "ns", EMBED.embed_query("one"), 1)


# Choosing the engine, and moving a memory folder from local mode.


def judge(home: Path, model: ScriptedChatModel) -> MemAlignJudge:
    spec = JudgeSpec(name="support_tone", instructions="Is the support bot's reply appropriate?", output=Boolean())
    return MemAlignJudge(spec, model, embeddings=BagOfWordsEmbeddings(), home=home)


def same_memory(prompt: str, other: str) -> bool:
    """The same guidelines. (The seed's episodes are all equally similar to the example judged, so which
    five of six come back is an engine's choice: `neighbours` compares the episodes.)"""
    return prompt.split("<example")[0] == other.split("<example")[0]


def neighbours(store: object) -> dict[str, float]:
    hits = store.search("support_tone", "default", BagOfWordsEmbeddings().embed_query(EXAMPLE["inputs"]), 10)  # type: ignore[attr-defined]
    return {hit["feedback_id"]: round(hit["similarity"], 5) for hit in hits}


def test_auto_keeps_a_small_folder_in_local_mode_and_moves_it_past_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEMALIGN_EPISODIC_ENGINE", raising=False)
    monkeypatch.delenv("MEMALIGN_QDRANT_URL", raising=False)
    model = ScriptedChatModel()
    with judge(tmp_path, model) as local:
        assert isinstance(local.episodic_store, QdrantEpisodicStore)  # a new folder starts in local mode
        seed(local)
        before, found = working_memory(local, model), neighbours(local.episodic_store)
    monkeypatch.setenv("MEMALIGN_EDGE_THRESHOLD", "6")
    with judge(tmp_path, model) as still_local:  # 6 episodes: not past 6
        assert isinstance(still_local.episodic_store, QdrantEpisodicStore)
    monkeypatch.setenv("MEMALIGN_EDGE_THRESHOLD", "5")
    with judge(tmp_path, model) as moved:
        assert isinstance(moved.episodic_store, EdgeEpisodicStore)
        assert not (tmp_path / "episodes").exists() and moved.verify().ok
        assert same_memory(working_memory(moved, model), before) and neighbours(moved.episodic_store) == found
        moved.align([])  # and it goes on working
    monkeypatch.setenv("MEMALIGN_EDGE_THRESHOLD", "1000")
    with judge(tmp_path, model) as again:  # a moved folder stays on the embedded engine
        assert isinstance(again.episodic_store, EdgeEpisodicStore)


def test_engine_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMALIGN_QDRANT_URL", raising=False)
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", "edge")
    with open_episodic_store(home=tmp_path) as store:  # a new folder, edge asked for: edge at once
        assert isinstance(store, EdgeEpisodicStore)
        put(store, "j", "ns", record("1", "one"))  # type: ignore[arg-type]
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", "local")
    with pytest.raises(ConfigurationError, match="MEMALIGN_EPISODIC_ENGINE=local, but the episodes under"):
        open_episodic_store(home=tmp_path)
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", "fast")
    with pytest.raises(ConfigurationError, match="MEMALIGN_EPISODIC_ENGINE: 'fast' is not an engine"):
        episodic_engine()
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", "auto")
    monkeypatch.setenv("MEMALIGN_EDGE_THRESHOLD", "many")
    with pytest.raises(ConfigurationError, match="MEMALIGN_EDGE_THRESHOLD: 'many' is not a number"):
        open_episodic_store(home=tmp_path / "new")
    monkeypatch.delenv("MEMALIGN_EDGE_THRESHOLD")
    monkeypatch.setattr(engines, "edge_installed", lambda: False)
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", "edge")
    with pytest.raises(ConfigurationError, match=r"pip install 'memalign-graph\[edge\]'"):
        open_episodic_store(home=tmp_path / "new")


def test_without_the_extra_a_large_local_folder_stays_and_says_how_to_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with QdrantEpisodicStore(path=tmp_path / "episodes") as store:
        put(store, "j", "ns", record("1", "one"), record("2", "two"))
    monkeypatch.setattr(engines, "edge_installed", lambda: False)
    assert engines.choose_engine(tmp_path, "auto", 1) == "local"
    assert "pip install 'memalign-graph[edge]'" in caplog.text and "2 episodes" in caplog.text


def test_a_move_killed_before_it_counted_leaves_local_mode_whole(tmp_path: Path) -> None:
    with QdrantEpisodicStore(path=tmp_path / "episodes") as store:
        put(store, "j", "ns", record("1", "one"))
    (tmp_path / "episodes-edge.moving").mkdir()  # a copy that never finished
    assert engines.choose_engine(tmp_path, "auto", 5) == "local"
    assert engines.move_local_to_edge(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes-edge"]
    with QdrantEpisodicStore(path=tmp_path / "h" / "episodes") as open_here:
        put(open_here, "j", "ns", record("1", "one"))
        with pytest.raises(EpisodicStoreError, match="while this process has them open"):
            engines.move_local_to_edge(tmp_path / "h")


def test_export_from_local_mode_and_import_onto_the_embedded_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tone_spec
) -> None:
    """The way between machines or folders: the same file, the same working memory, nothing re-embedded."""
    monkeypatch.delenv("MEMALIGN_QDRANT_URL", raising=False)
    source_model = ScriptedChatModel()
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", "local")
    with judge(tmp_path / "a", source_model) as source:
        seed(source)
        before, found = working_memory(source, source_model), neighbours(source.episodic_store)
        written = source.export_memory(tmp_path / "memory.json")
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", "edge")
    target_model, embeddings = ScriptedChatModel(), BagOfWordsEmbeddings()
    with MemAlignJudge(tone_spec, target_model, embeddings=embeddings, home=tmp_path / "b") as copy:
        assert isinstance(copy.episodic_store, EdgeEpisodicStore)
        assert copy.import_memory(tmp_path / "memory.json") == written
        assert embeddings.embedded == [] and same_memory(working_memory(copy, target_model), before)
        assert neighbours(copy.episodic_store) == found
        copy.import_memory(tmp_path / "memory.json")  # idempotent
        assert copy.verify().ok and copy.episodic_store.count("support_tone", "default") == 6
        copy.export_memory(tmp_path / "back.json")
    assert (
        json.loads((tmp_path / "back.json").read_text())["episodes"]
        == json.loads((tmp_path / "memory.json").read_text())["episodes"]
    )
