"""The judge as a node of a user's graph: a real subgraph, visible step by step, touching only its verdict key.

Before: the node was an opaque lambda; `get_graph(xray=True)` drew one box and a parent's
`stream(subgraphs=True)` showed `retrieve: None` and `judge: None`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from memalign_graph import Feedback, InvalidValueError, MemAlignJudge

RULE = "Answer true when the text mentions sorry."


class AgentState(TypedDict, total=False):
    question: str
    answer: str  # a key the judging graph also uses inside: the parent's must never be touched
    review: dict[str, Any]


@dataclass(frozen=True)
class AgentContext:
    user: str = "someone"


def agent(judge: MemAlignJudge, **compile_options: Any):
    builder = StateGraph(AgentState, context_schema=AgentContext)
    builder.add_node("review", judge.as_node(inputs_key="question", outputs_key="answer", verdict_key="review"))
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    return builder.compile(**compile_options)


@pytest.fixture
def aligned(make_judge, tone_spec) -> MemAlignJudge:
    judge = make_judge(tone_spec)
    judge.align([Feedback(id="fb-sorry", inputs="refund", outputs="sorry", value=True, rationale=RULE)])
    return judge


def test_xray_draws_the_judging_steps_inside_the_node(aligned) -> None:
    drawn = agent(aligned).get_graph(xray=True).draw_mermaid()
    for step in ("retrieve", "build_working_memory", "judge", "parse"):
        assert f"review\\3a{step}({step})" in drawn
    assert "subgraph review" in drawn
    assert "review(review)" in agent(aligned).get_graph().draw_mermaid()  # without xray: one box, as before


def test_a_parents_stream_shows_what_each_step_produced(aligned) -> None:
    graph = agent(aligned, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    chunks = list(
        graph.stream(
            {"question": "my refund", "answer": "So sorry, done."},
            config,
            context=AgentContext(),
            stream_mode="updates",
            subgraphs=True,
        )
    )
    inner = {step: update for namespace, chunk in chunks if namespace for step, update in chunk.items()}
    assert [g["id"] for g in inner["retrieve"]["guidelines"]] == [g["id"] for g in aligned.guidelines()]
    assert [e["feedback_id"] for e in inner["retrieve"]["episodes"]] == ["fb-sorry"]
    assert "So sorry, done." in inner["build_working_memory"]["working_memory"]["user"]
    assert '"value": true' in inner["judge"]["raw_outputs"][0].replace("True", "true")
    assert inner["parse"]["verdict"]["score"] is True
    outer = [chunk for namespace, chunk in chunks if not namespace]
    assert outer == [{"review": {"review": inner["parse"]["verdict"]}}]
    state = graph.get_state(config).values
    assert state["answer"] == "So sorry, done." and set(state) == {"question", "answer", "review"}


def test_the_node_runs_in_the_judges_settings_whatever_the_parents_context(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec, namespace="tenant-b")
    result = agent(judge).invoke({"question": "q", "answer": "a"}, context=AgentContext(user="x"))
    assert result["review"]["metadata"]["namespace"] == "tenant-b"


def test_the_node_in_an_async_parent(aligned) -> None:
    result = asyncio.run(agent(aligned).ainvoke({"question": "parcel", "answer": "sorry for the delay"}))
    assert result["review"]["score"] is True and result["review"]["metadata"]["episode_ids"] == ["fb-sorry"]


def test_a_missing_inputs_key_names_the_key_and_the_fix(aligned) -> None:
    builder = StateGraph(AgentState)
    builder.add_node("review", aligned.as_node(inputs_key="prompt", outputs_key="answer", verdict_key="review"))
    builder.add_edge(START, "review")
    with pytest.raises(InvalidValueError, match=r"no key 'prompt' to judge; pass as_node\(inputs_key=...\)"):
        builder.compile().invoke({"question": "q", "answer": "a"})
