"""The two factories on their own, as a LangGraph developer wires them: no facade in between."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import (
    MemoryThread,
    QdrantEpisodicStore,
    create_alignment_graph,
    create_judge_graph,
    memory_thread_id,
)

RULE = "Answer true when the text mentions sorry."


class Review(TypedDict, total=False):
    inputs: str
    outputs: str
    verdict: dict[str, Any]
    memory_used: dict[str, Any]


def test_a_judging_graph_nested_in_a_checkpointed_graph_reads_memory_through_its_checkpointer(tone_spec) -> None:
    """Without `semantic_memory=`, the judging graph finds the guidelines on the judge's memory thread in
    the checkpointer of the graph it runs inside."""
    saver, model, embeddings = InMemorySaver(), ScriptedChatModel(), BagOfWordsEmbeddings()
    with QdrantEpisodicStore() as store:
        align = create_alignment_graph(
            model, spec=tone_spec, embeddings=embeddings, episodic_store=store, checkpointer=saver
        )
        report = align.invoke(
            {"feedback": [{"inputs": "Late parcel", "outputs": "Sorry!", "value": True, "rationale": RULE}]},
            {"configurable": {"thread_id": memory_thread_id("support_tone", "default")}},
        )
        assert report["report"]["added"] and list(report["guidelines"].values())[0]["text"] == RULE

        judge = create_judge_graph(model, spec=tone_spec, embeddings=embeddings, episodic_store=store)
        builder = StateGraph(Review)
        builder.add_node("judge", judge)
        builder.add_edge(START, "judge")
        builder.add_edge("judge", END)
        agent = builder.compile(checkpointer=saver)
        out = agent.invoke({"inputs": "Where is it?", "outputs": "So sorry."}, {"configurable": {"thread_id": "a-1"}})
    assert out["verdict"]["score"] is True
    assert [g["text"] for g in out["memory_used"]["guidelines"]] == [RULE]


def test_the_alignment_factory_pairs_with_a_memory_owner(tone_spec) -> None:
    """A developer's own alignment graph gets the facade's guarantees by going through `MemoryThread`."""
    saver = InMemorySaver()
    with QdrantEpisodicStore() as store:
        graph = create_alignment_graph(
            ScriptedChatModel(),
            spec=tone_spec,
            embeddings=BagOfWordsEmbeddings(),
            episodic_store=store,
            checkpointer=saver,
            namespace="team-a",
        )
        memory = MemoryThread(graph, judge="support_tone", namespace="team-a")
        first = memory.align({"feedback": [{"id": "f1", "inputs": "q", "outputs": "a", "value": True}]})
        memory.align({"feedback": [{"id": "f2", "inputs": "q2", "outputs": "a", "value": False}]})
        assert first["added"] == ["f1"] and set(memory.ledger()) == {"f1", "f2"}
        assert [version["feedback"] for version in memory.history()] == [2, 1]
        memory.rollback(memory.history()[-1]["checkpoint_id"])
        assert set(memory.ledger()) == {"f1"} and store.feedback_ids("support_tone", "team-a") == {"f1"}
