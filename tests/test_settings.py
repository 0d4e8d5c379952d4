"""Graphs configured per run (what the LangGraph server serves): settings in, clear errors out."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graphs.alignment import graph as alignment_graph
from graphs.feedback import graph as feedback_graph
from graphs.judging import graph as judging_graph
from memalign_graph import ConfigurationError, InvalidValueError, memory_thread_id


@pytest.fixture
def settings(tmp_path, monkeypatch) -> dict:
    """A run's context, within what the deployment (its environment) serves."""
    for name, value in (
        ("MEMALIGN_HOME", str(tmp_path)),
        ("MEMALIGN_MODEL", "fake"),
        ("MEMALIGN_EMBEDDINGS", "fake"),
        ("MEMALIGN_SERVED_NAMESPACES", "team-*"),
    ):
        monkeypatch.setenv(name, value)
    judge = {"name": "grader", "instructions": "Good?", "output": {"kind": "categorical", "labels": ["good", "bad"]}}
    return {"judge": judge, "namespace": "team-a"}


def test_served_graphs_bind_nothing_at_import() -> None:
    for graph in (alignment_graph, judging_graph, feedback_graph):
        assert graph.checkpointer is None and graph.store is None


def test_one_compiled_graph_serves_judges_named_per_run(settings: dict) -> None:
    saver = InMemorySaver()
    align = alignment_graph.copy(update={"checkpointer": saver})
    judging = judging_graph.copy(update={"checkpointer": saver})
    thread = {"configurable": {"thread_id": memory_thread_id("grader", "team-a")}}
    feedback = [
        {
            "id": "f",
            "inputs": "q",
            "outputs": "meh",
            "value": "bad",
            "rationale": "Answer bad when the text mentions meh.",
        }
    ]
    align.invoke({"feedback": feedback}, thread, context=settings)
    verdict = judging.invoke(
        {"inputs": "q2", "outputs": "meh"}, {"configurable": {"thread_id": "any"}}, context=settings
    )
    assert verdict["verdict"]["score"] == "bad"
    other = {**settings, "namespace": "team-b"}
    verdict = judging.invoke(
        {"inputs": "q2", "outputs": "meh"}, {"configurable": {"thread_id": "other"}}, context=other
    )
    assert verdict["verdict"]["score"] == "good" and verdict["memory_used"] == {"guidelines": [], "episodes": []}


def test_a_run_without_a_judge_says_what_to_give(settings: dict) -> None:
    with pytest.raises(ConfigurationError, match="context.judge: give the judge as a JudgeSpec object"):
        judging_graph.invoke(
            {"inputs": "q", "outputs": "a"}, context={k: v for k, v in settings.items() if k != "judge"}
        )
    bad = {**settings, "judge": {"name": "x", "instructions": "y", "output": {"kind": "stars"}}}
    with pytest.raises(InvalidValueError, match="context.judge: output"):
        judging_graph.invoke({"inputs": "q", "outputs": "a"}, context=bad)


def test_the_served_alignment_graph_only_runs_on_the_judges_memory_thread(settings: dict) -> None:
    align = alignment_graph.copy(update={"checkpointer": InMemorySaver()})
    with pytest.raises(InvalidValueError, match="keeps its memory on thread"):
        align.invoke({"feedback": []}, {"configurable": {"thread_id": "somewhere-else"}}, context=settings)


def test_judging_without_any_semantic_memory_source_is_a_clear_error(settings: dict) -> None:
    with pytest.raises(ConfigurationError, match="no semantic memory to read"):
        judging_graph.invoke({"inputs": "q", "outputs": "a"}, context=settings)


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_served_graphs_keep_episodes_on_the_qdrant_server_the_environment_names(
    settings: dict, monkeypatch, tmp_path: Path
) -> None:
    """The deploy stack configures the server process, not each run: MEMALIGN_QDRANT_URL and its key."""
    from qdrant_client import QdrantClient

    from memalign_graph.serving import _close_shared
    from qdrant_rest import running_qdrant_rest

    with running_qdrant_rest(api_key="s3cret") as url:
        monkeypatch.setenv("MEMALIGN_QDRANT_URL", url)
        monkeypatch.setenv("MEMALIGN_QDRANT_API_KEY", "s3cret")
        saver = InMemorySaver()
        align = alignment_graph.copy(update={"checkpointer": saver})
        judging = judging_graph.copy(update={"checkpointer": saver})
        thread = {"configurable": {"thread_id": memory_thread_id("grader", "team-a")}}
        feedback = [{"id": "f", "inputs": "q", "outputs": "meh", "value": "bad", "rationale": "Meh is bad."}]
        try:
            align.invoke({"feedback": feedback}, thread, context=settings)
            verdict = judging.invoke(
                {"inputs": "q", "outputs": "meh"}, {"configurable": {"thread_id": "t"}}, context=settings
            )
            qdrant = QdrantClient(url=url, api_key="s3cret", check_compatibility=False)
            stored = qdrant.count("memalign_episodes").count
            qdrant.close()
        finally:
            _close_shared()
    assert stored == 1 and verdict["verdict"]["metadata"]["episode_ids"] == ["f"]
    assert not (tmp_path / "episodes").exists()
