"""The facade: configuration errors, batches, the judge as a node in a user's graph, lifecycle."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, StateGraph

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import (
    ConfigurationError,
    Feedback,
    InvalidValueError,
    MemAlignJudge,
    QdrantEpisodicStore,
    VerdictParseError,
    resolve_chat_model,
)
from memalign_graph.model_calls import is_transient


def test_no_model_configured_says_what_to_set(monkeypatch: pytest.MonkeyPatch, tone_spec) -> None:
    monkeypatch.delenv("MEMALIGN_MODEL", raising=False)
    with pytest.raises(ConfigurationError, match="set MEMALIGN_MODEL") as raised:
        MemAlignJudge(tone_spec, embeddings=BagOfWordsEmbeddings())
    assert "MEMALIGN_BASE_URL" in str(raised.value)


def test_a_model_string_with_a_base_url_builds_an_openai_compatible_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMALIGN_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    model = resolve_chat_model("openai:my-local-model")
    assert model.model_name == "my-local-model" and str(model.openai_api_base) == "http://127.0.0.1:9/v1"


def test_batch_can_keep_going_past_an_example_without_a_verdict(make_judge, tone_spec) -> None:
    def policy(system: str, user: str) -> dict[str, Any]:
        return {"rationale": "r", "value": "maybe" if "bad" in user.split("Judge this")[1] else True}

    judge = make_judge(tone_spec, model=ScriptedChatModel(judge=policy))
    results = judge.batch(
        [{"inputs": "good", "outputs": "a"}, {"inputs": "bad", "outputs": "a"}], return_exceptions=True
    )
    assert results[0]["score"] is True and isinstance(results[1], VerdictParseError)
    with pytest.raises(VerdictParseError):
        judge.batch([{"inputs": "bad", "outputs": "a"}])


def test_batch_names_an_example_with_unknown_keys(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    with pytest.raises(InvalidValueError, match=r"examples\[1\]: unknown keys \['id', 'label'\]"):
        judge.batch([{"inputs": "q", "outputs": "a"}, {"inputs": "q", "outputs": "a", "id": 1, "label": "x"}])


class ReviewState(TypedDict, total=False):
    question: str
    draft: str
    review: dict[str, Any]


def user_graph(judge: MemAlignJudge):
    builder = StateGraph(ReviewState)
    builder.add_node("write", lambda state: {"draft": f"So sorry! About {state['question']}: done."})
    builder.add_node("review", judge.as_node(inputs_key="question", outputs_key="draft", verdict_key="review"))
    builder.add_edge(START, "write")
    builder.add_edge("write", "review")
    builder.add_edge("review", END)
    return builder.compile()


def test_as_node_in_a_sync_and_an_async_user_graph(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    judge.align(
        [Feedback(inputs="x", outputs="sorry", value=True, rationale="Answer true when the text mentions sorry.")]
    )
    graph = user_graph(judge)
    result = graph.invoke({"question": "my refund"})
    assert result["review"]["score"] is True and result["review"]["key"] == "support_tone"
    async_result = asyncio.run(graph.ainvoke({"question": "my parcel"}))
    assert async_result["review"]["score"] is True
    streamed = [next(iter(chunk)) for chunk in graph.stream({"question": "q"}, stream_mode="updates")]
    assert streamed == ["write", "review"]


def test_conversations_are_judged_and_stored_as_plain_data(make_judge, tone_spec, model) -> None:
    judge = make_judge(tone_spec)
    conversation = [HumanMessage("I was charged twice"), AIMessage("Sorry! Refund sent.")]
    judge.align([Feedback(id="chat", inputs=conversation, outputs="Sorry! Refund sent.", value=True)])
    [episode] = judge.episodic_store.search("support_tone", "default", judge.embeddings.embed_query("charged"), 1)
    assert episode["inputs"][0] == {"role": "user", "content": "I was charged twice"}
    judge.judge(inputs=conversation, outputs="ok")
    assert "user: I was charged twice\nassistant: Sorry! Refund sent." in model.calls_of("verdict")[-1]["user"]


@pytest.mark.parametrize(
    "error, transient",
    [
        (TimeoutError("read timed out"), True),
        (ConnectionError("reset"), True),
        (type("RateLimitError", (Exception,), {})("429"), True),
        (type("APIStatusError", (Exception,), {"status_code": 503})("busy"), True),
        (type("BadRequestError", (Exception,), {"status_code": 400})("bad"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_transient_model_errors_are_retried(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_failed_open_releases_the_local_store(tmp_path: Path, tone_spec, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    with pytest.raises(sqlite3.OperationalError):
        MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path)
    monkeypatch.undo()
    with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path) as judge:
        assert judge.guidelines() == []
    # closed: the path can be opened by a plain client again
    QdrantEpisodicStore(path=tmp_path / "episodes").close()


def test_the_judge_node_streams_its_own_steps_as_a_subgraph(make_judge, tone_spec) -> None:
    graph = user_graph(make_judge(tone_spec))
    namespaces = [namespace for namespace, _ in graph.stream({"question": "q"}, stream_mode="updates", subgraphs=True)]
    inner = {namespace[0].split(":")[0] for namespace in namespaces if namespace}
    assert inner == {"review"}
    assert len([namespace for namespace in namespaces if namespace]) == 4  # retrieve, working memory, judge, parse


def test_semantic_memory_moves_to_postgres_by_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path, tone_spec
) -> None:
    from conftest import postgres_schema

    with postgres_schema() as url:
        monkeypatch.setenv("MEMALIGN_POSTGRES_URL", url)
        feedback = Feedback(
            id="f", inputs="q", outputs="sorry", value=True, rationale="Answer true when the text mentions sorry."
        )
        with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path) as judge:
            assert type(judge.checkpointer).__name__ == "PostgresSaver"
            judge.align([feedback])
        assert not (tmp_path / "semantic.sqlite").exists()
        with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path) as again:
            assert [g["feedback_ids"] for g in again.guidelines()] == [["f"]]
            assert again.judge(inputs="x", outputs="so sorry")["score"] is True


def test_an_unreachable_postgres_says_what_to_check(tone_spec, tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="Check MEMALIGN_POSTGRES_URL"):
        MemAlignJudge(
            tone_spec,
            ScriptedChatModel(),
            embeddings=BagOfWordsEmbeddings(),
            home=tmp_path,
            postgres_url="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
        )
    QdrantEpisodicStore(path=tmp_path / "episodes").close()  # the half-opened judge released its store


def test_episodes_move_to_a_qdrant_server_by_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path, tone_spec
) -> None:
    """URL, key, layout and collection all come from the environment: a shared cluster, one collection each."""
    from qdrant_rest import running_qdrant_rest

    with running_qdrant_rest() as url:
        monkeypatch.setenv("MEMALIGN_QDRANT_URL", url)
        monkeypatch.setenv("MEMALIGN_QDRANT_COLLECTION", "staging_episodes")
        feedback = Feedback(id="f", inputs="q", outputs="sorry", value=True, rationale="Sorry is fine.")
        with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path) as judge:
            judge.align([feedback])
            store = judge.episodic_store
            assert isinstance(store, QdrantEpisodicStore) and store.layout == "shared"
            assert [c.name for c in store.client.get_collections().collections] == ["staging_episodes"]
        monkeypatch.setenv("MEMALIGN_QDRANT_LAYOUT", "collection_per_judge")
        with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path) as judge:
            assert judge.episodic_store.layout == "collection_per_judge"  # type: ignore[attr-defined]
    assert not (tmp_path / "episodes").exists()
    monkeypatch.setenv("MEMALIGN_QDRANT_LAYOUT", "flat")
    with pytest.raises(ConfigurationError, match="MEMALIGN_QDRANT_LAYOUT: 'flat' is not a layout; use 'shared'"):
        MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path)
