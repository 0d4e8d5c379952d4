"""Accounting: calls, tokens and time per alignment stage and per judgment, from real graph runs."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langgraph.checkpoint.memory import InMemorySaver

from fakes import MeteredChatModel
from memalign_graph import Boolean, Feedback, JudgeSpec, MemAlignJudge, QdrantEpisodicStore
from memalign_graph.accounting import Prices, Usage, UsageTracker, reported_tokens, track_usage
from memalign_graph.bulk import judge_examples
from memalign_graph.evaluation.protocol import ALIGNMENT_STAGES, JUDGING_STAGES
from memalign_graph.fake_model import FakeEmbeddings

SPEC = JudgeSpec(name="tone", instructions="Is the reply appropriate?", output=Boolean())


@pytest.fixture
def judge():
    store = QdrantEpisodicStore()
    judge = MemAlignJudge(
        SPEC, MeteredChatModel(), embeddings=FakeEmbeddings(), episodic_store=store, checkpointer=InMemorySaver()
    )
    yield judge
    judge.close()
    store.close()


FEEDBACK = [
    Feedback(id=f"fb{i}", inputs=f"customer message {i}", outputs=f"reply {i}", value=i % 2 == 0, rationale=f"why {i}")
    for i in range(6)
]


def test_alignment_is_accounted_by_stage(judge: MemAlignJudge) -> None:
    tracker = UsageTracker()
    with track_usage(tracker):
        judge.align(FEEDBACK)
    stages = tracker.by_stage()
    assert set(ALIGNMENT_STAGES) <= set(stages)  # every node timed
    assert all(stages[stage].seconds > 0 for stage in ALIGNMENT_STAGES)
    assert stages["distill"].calls == 2  # one batch of 6 (batch size 8): distilled, then its drafts checked
    assert stages["distill"].input_tokens > 0 and stages["distill"].output_tokens > 0
    assert stages["validate"].calls == stages["write_memory"].calls == 0
    assert tracker.total().calls == sum(usage.calls for usage in stages.values())


def test_each_judgment_is_credited_to_its_item_under_concurrency(judge: MemAlignJudge) -> None:
    judge.align(FEEDBACK)  # outside tracking: not counted
    tracker = UsageTracker()
    examples = [{"inputs": f"customer message {i}", "outputs": "a reply"} for i in range(8)]
    with track_usage(tracker):
        verdicts = judge_examples(
            judge, examples, labels=[f"row{i}" for i in range(8)], max_concurrency=4, tracker=tracker
        )
    assert not [verdict for verdict in verdicts if isinstance(verdict, Exception)]
    items = tracker.by_item()
    assert sorted(items) == [f"row{i}" for i in range(8)]
    assert all(usage.calls == 1 and usage.input_tokens > 0 and usage.seconds > 0 for usage in items.values())
    stages = tracker.by_stage()
    assert set(JUDGING_STAGES) <= set(stages) and stages["judge"].calls == 8
    assert "distill" not in stages
    assert sum(usage.total_tokens for usage in items.values()) == tracker.total().total_tokens


def test_nothing_is_counted_outside_the_tracking_block(judge: MemAlignJudge) -> None:
    tracker = UsageTracker()
    with track_usage(tracker):
        pass
    judge.judge(inputs="hello", outputs="hi")
    assert tracker.total() == Usage()


def test_a_failed_verdict_is_an_exception_in_place_and_its_calls_still_count() -> None:
    store = QdrantEpisodicStore()
    refusing = MeteredChatModel(refuse="forbidden")
    with MemAlignJudge(
        SPEC, refusing, embeddings=FakeEmbeddings(), episodic_store=store, checkpointer=InMemorySaver()
    ) as judge:
        tracker = UsageTracker()
        with track_usage(tracker):
            verdicts = judge_examples(
                judge, [{"inputs": "fine", "outputs": "ok"}, {"inputs": "forbidden", "outputs": "ok"}], tracker=tracker
            )
    store.close()
    assert verdicts[0]["score"] is False and isinstance(verdicts[1], Exception)
    assert tracker.by_item()["1"].calls == 3  # every parse attempt was a paid call


def test_tokens_come_from_usage_metadata_or_the_providers_token_usage() -> None:
    with_metadata = LLMResult(
        generations=[
            [
                ChatGeneration(
                    message=AIMessage("x", usage_metadata={"input_tokens": 7, "output_tokens": 2, "total_tokens": 9})
                )
            ]
        ]
    )
    assert reported_tokens(with_metadata) == (7, 2)
    legacy = LLMResult(
        generations=[[ChatGeneration(message=AIMessage("x"))]],
        llm_output={"token_usage": {"prompt_tokens": 11, "completion_tokens": 4}},
    )
    assert reported_tokens(legacy) == (11, 4)
    assert reported_tokens(LLMResult(generations=[[ChatGeneration(message=AIMessage("x"))]])) == (0, 0)


def test_cost_from_prices_per_million_tokens() -> None:
    usage = Usage(calls=2, input_tokens=1_000_000, output_tokens=500_000)
    assert Prices(input_per_million=0.4, output_per_million=1.6).cost(usage) == pytest.approx(0.4 + 0.8)
    assert (usage + usage).as_dict()["total_tokens"] == 3_000_000
