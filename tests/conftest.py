"""Fixtures parametrized over the memory backends: in memory, and on disk (Qdrant path + SQLite)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Boolean, JudgeSpec, MemAlignJudge, QdrantEpisodicStore
from memalign_graph.memory.savers import open_postgres_checkpointer

# MLflow and LiteLLM for the integration tests, set before any test module imports them: no telemetry,
# traces written synchronously (an assessment needs its trace in the store), LiteLLM's bundled price map.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def tone_spec() -> JudgeSpec:
    return JudgeSpec(name="support_tone", instructions="Is the support bot's reply appropriate?", output=Boolean())


@pytest.fixture
def embeddings() -> BagOfWordsEmbeddings:
    return BagOfWordsEmbeddings()


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel()


POSTGRES_HELP = (
    "no test PostgreSQL: run the suite with `bash scripts/test.sh` (it starts one), or set "
    "MEMALIGN_TEST_POSTGRES_URL=postgresql://user@127.0.0.1:5432/db"
)


@pytest.fixture(params=["memory", "disk", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An episodic store and a checkpointer, shared by every judge a test opens.

    memory: Qdrant in memory + InMemorySaver; disk: Qdrant local mode + SQLite (the embedded default);
    postgres: Qdrant local mode + the Postgres checkpointer, in a schema of the test's own.
    """
    if request.param == "memory":
        store = QdrantEpisodicStore()
        yield {"episodic_store": store, "checkpointer": InMemorySaver()}
        store.close()
        return
    store = QdrantEpisodicStore(path=tmp_path / "episodes")
    if request.param == "disk":
        connection = sqlite3.connect(tmp_path / "semantic.sqlite", check_same_thread=False)
        yield {"episodic_store": store, "checkpointer": SqliteSaver(connection)}
        connection.close()
    else:
        with postgres_schema() as url:
            saver, close = open_postgres_checkpointer(url)
            yield {"episodic_store": store, "checkpointer": saver}
            close()
    store.close()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A connection URL whose search_path is a fresh schema, dropped afterwards: tests never share tables."""
    base = os.environ.get("MEMALIGN_TEST_POSTGRES_URL")
    if not base:
        pytest.skip(POSTGRES_HELP)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


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
