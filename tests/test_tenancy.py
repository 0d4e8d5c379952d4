"""Tenancy is bound, not passed: a judge opened in a namespace reads and writes only that namespace,
through every way in (the facade's methods, its three graphs, the judge as a node in a user's graph)."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from memalign_graph import AlignmentContext, InvalidValueError, JudgeContext, MemAlignJudge, memory_thread_id
from memalign_graph.context import FeedbackContext
from memalign_graph.memory.savers import latest_checkpoint_id, thread_ids

RULE = "Answer true when the text mentions sorry."
EXAMPLE = {"inputs": "Where is my parcel?", "outputs": "Sorry for the wait."}


def untouched(judge: MemAlignJudge, namespace: str) -> bool:
    """Nothing of the judge exists in `namespace`: no memory thread, no episode."""
    store, name = judge.episodic_store, judge.spec.name
    no_thread = latest_checkpoint_id(judge.checkpointer, memory_thread_id(name, namespace)) is None
    return no_thread and store.count(name, namespace) == 0


def test_the_feedback_graph_of_a_tenant_judges_and_aligns_in_that_tenant(make_judge, tone_spec, backend) -> None:
    """Before: the feedback graph ran in `default` whatever the facade's namespace, so tenant B's
    correction landed in tenant A's memory."""
    tenant_a = make_judge(tone_spec)  # namespace "default"
    tenant_b = make_judge(tone_spec, namespace="tenant-b")
    config = {"configurable": {"thread_id": "review-b"}}
    waiting = tenant_b.feedback_graph.invoke(EXAMPLE, config)
    assert waiting["__interrupt__"][0].value["verdict"]["metadata"]["namespace"] == "tenant-b"
    done = tenant_b.feedback_graph.invoke(
        Command(resume={"action": "correct", "value": True, "rationale": RULE}), config
    )
    assert done["updated_verdict"]["score"] is True
    assert done["updated_verdict"]["metadata"]["namespace"] == "tenant-b"
    assert [g["text"] for g in tenant_b.guidelines()] == [RULE]
    assert tenant_a.guidelines() == [] and untouched(tenant_a, "default")
    assert tenant_b.episodic_store.count("support_tone", "tenant-b") == 1


@pytest.mark.parametrize("graph", ["judge_graph", "alignment_graph", "feedback_graph"])
def test_a_run_cannot_name_another_namespace_on_a_bound_graph(make_judge, tone_spec, graph: str) -> None:
    judge = make_judge(tone_spec, namespace="tenant-b")
    run: dict[str, tuple[Any, Any]] = {
        "judge_graph": (EXAMPLE, JudgeContext(namespace="default")),
        "alignment_graph": ({"feedback": [{**EXAMPLE, "value": True}]}, AlignmentContext(namespace="default")),
        "feedback_graph": (EXAMPLE, FeedbackContext(namespace="default")),
    }
    payload, context = run[graph]
    config = {"configurable": {"thread_id": memory_thread_id("support_tone", "tenant-b")}}
    with pytest.raises(InvalidValueError, match="bound to namespace 'tenant-b'"):
        getattr(judge, graph).invoke(payload, config, context=context)
    assert untouched(judge, "default")
    assert judge.memory.ledger() == {} and judge.episodic_store.count("support_tone", "tenant-b") == 0


def test_every_facade_method_stays_in_its_namespace(make_judge, tone_spec) -> None:
    tenant_a = make_judge(tone_spec)
    tenant_a.align([{**EXAMPLE, "id": "a-1", "value": True, "rationale": RULE}])
    tenant_b = make_judge(tone_spec, namespace="tenant-b")
    assert tenant_b.guidelines() == [] and tenant_b.history() == []
    assert tenant_b.judge(**EXAMPLE)["metadata"]["episode_ids"] == []  # A's episode is not retrieved
    assert tenant_b.forget(["a-1"])["forgotten"] == []  # B cannot forget A's feedback
    tenant_b.align([{**EXAMPLE, "id": "b-1", "value": False}])
    tenant_b.rollback(tenant_b.history()[0]["checkpoint_id"])
    assert tenant_a.memory.ledger().keys() == {"a-1"} and tenant_b.memory.ledger().keys() == {"b-1"}
    assert tenant_a.episodic_store.feedback_ids("support_tone", "default") == {"a-1"}
    assert tenant_b.episodic_store.feedback_ids("support_tone", "tenant-b") == {"b-1"}


class Draft(TypedDict, total=False):
    question: str
    draft: str
    review: dict[str, Any]


def test_the_judge_as_a_node_judges_in_its_namespace(make_judge, tone_spec) -> None:
    tenant_a = make_judge(tone_spec)
    tenant_a.align([{**EXAMPLE, "id": "a-1", "value": True, "rationale": RULE}])
    tenant_b = make_judge(tone_spec, namespace="tenant-b")
    builder = StateGraph(Draft)
    builder.add_node("review", tenant_b.as_node(inputs_key="question", outputs_key="draft", verdict_key="review"))
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    agent = builder.compile(checkpointer=InMemorySaver())
    out = agent.invoke(
        {"question": EXAMPLE["inputs"], "draft": EXAMPLE["outputs"]}, {"configurable": {"thread_id": "agent-1"}}
    )
    assert out["review"]["metadata"]["namespace"] == "tenant-b"
    assert out["review"]["metadata"]["guideline_ids"] == [] and out["review"]["score"] is False


def test_the_served_graphs_keep_tenants_apart_by_context(tmp_path, monkeypatch) -> None:
    """Served graphs are unbound: the run's context names the tenant (one the deployment serves), and only
    that one is touched."""
    from graphs.alignment import graph as alignment_graph
    from graphs.judging import graph as judging_graph

    for name, value in (("MEMALIGN_HOME", str(tmp_path)), ("MEMALIGN_SERVED_NAMESPACES", "team-*")):
        monkeypatch.setenv(name, value)
    saver = InMemorySaver()
    judge = {"name": "grader", "instructions": "ok?", "output": {"kind": "boolean"}}
    served = {"judge": judge, "model": "fake", "embeddings": "fake"}
    monkeypatch.setenv("MEMALIGN_SERVED_MODELS", "fake")
    monkeypatch.setenv("MEMALIGN_SERVED_EMBEDDINGS", "fake")
    for tenant, rule in (("team-a", RULE), ("team-b", "Answer true when the text mentions parcel.")):
        align = alignment_graph.copy(update={"checkpointer": saver})
        align.invoke(
            {"feedback": [{"inputs": "q", "outputs": "a", "value": True, "rationale": rule}]},
            {"configurable": {"thread_id": memory_thread_id("grader", tenant)}},
            context=_settings({**served, "namespace": tenant}),
        )
    judging = judging_graph.copy(update={"checkpointer": saver})
    seen = {
        tenant: judging.invoke(
            EXAMPLE, {"configurable": {"thread_id": "t"}}, context=_settings({**served, "namespace": tenant})
        )["verdict"]["metadata"]
        for tenant in ("team-a", "team-b")
    }
    assert seen["team-a"]["namespace"] == "team-a" and seen["team-b"]["namespace"] == "team-b"
    assert seen["team-a"]["guideline_ids"] != seen["team-b"]["guideline_ids"]
    assert {memory_thread_id("grader", t) for t in ("team-a", "team-b")} <= thread_ids(saver)
    with pytest.raises(InvalidValueError, match="'other' is not served by this deployment; it serves team-"):
        other = _settings({**served, "namespace": "other"})
        judging.invoke(EXAMPLE, {"configurable": {"thread_id": "t"}}, context=other)


def _settings(values: dict[str, Any]) -> Any:
    from memalign_graph.serving import MemAlignSettings

    return MemAlignSettings(**values)
