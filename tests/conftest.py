"""Fixtures parametrized over the memory backends: in memory, and on disk (Qdrant path + SQLite)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Boolean, JudgeSpec, MemAlignJudge, QdrantEpisodicStore


@pytest.fixture
def tone_spec() -> JudgeSpec:
    return JudgeSpec(name="support_tone", instructions="Is the support bot's reply appropriate?", output=Boolean())


@pytest.fixture
def embeddings() -> BagOfWordsEmbeddings:
    return BagOfWordsEmbeddings()


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel()


@pytest.fixture(params=["memory", "disk"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An episodic store and a checkpointer, shared by every judge a test opens."""
    if request.param == "memory":
        store = QdrantEpisodicStore()
        yield {"episodic_store": store, "checkpointer": InMemorySaver()}
        store.close()
        return
    store = QdrantEpisodicStore(path=tmp_path / "episodes")
    connection = sqlite3.connect(tmp_path / "semantic.sqlite", check_same_thread=False)
    yield {"episodic_store": store, "checkpointer": SqliteSaver(connection)}
    store.close()
    connection.close()


@pytest.fixture
def make_judge(
    backend: dict[str, Any], embeddings: BagOfWordsEmbeddings, model: ScriptedChatModel
) -> Iterator[Callable[..., MemAlignJudge]]:
    judges: list[MemAlignJudge] = []

    def make(spec: JudgeSpec, **options: Any) -> MemAlignJudge:
        options.setdefault("embeddings", embeddings)
        judge = MemAlignJudge(spec, options.pop("model", model), **backend, **options)
        judges.append(judge)
        return judge

    yield make
    for judge in judges:
        judge.close()
