"""LLM and store faults, injected: bounded retries, clear errors, no made-up verdict, nothing lost."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from fakes import BagOfWordsEmbeddings, ScriptedChatModel, rationale_distiller
from memalign_graph import (
    AlignmentContext,
    EpisodicStoreError,
    Feedback,
    MemAlignJudge,
    QdrantEpisodicStore,
    VerdictParseError,
)


class RateLimitError(Exception):
    """Shaped like a provider's rate-limit error (status 429)."""

    status_code = 429


GOOD = {"rationale": "fine", "value": True}

# Each fault alone, then recovered: (what the model does first, how many calls the judge then needs).
RECOVERABLE = {
    "unparseable": (["{not json", GOOD], 2),
    "out_of_type": ([{"rationale": "x", "value": "perhaps"}, GOOD], 2),
    "empty_answer": (["", GOOD], 2),
    "missing_value": ([{"rationale": "x"}, GOOD], 2),
    "timeout": ([TimeoutError("read timed out"), GOOD], 2),
    "rate_limit": ([RateLimitError("slow down"), GOOD], 2),
}


@pytest.mark.parametrize("fault", sorted(RECOVERABLE))
def test_judging_survives_one_fault(make_judge, tone_spec, fault: str) -> None:
    script, calls = RECOVERABLE[fault]
    model = ScriptedChatModel(judge=list(script))
    verdict = make_judge(tone_spec, model=model).judge(inputs="q", outputs="a")
    assert verdict["score"] is True and len(model.calls_of("verdict")) == calls


PERSISTENT = {
    "unparseable": ["{not json"] * 3,
    "out_of_type": [{"rationale": "x", "value": 7}] * 3,
    "empty_answer": [""] * 3,
}


@pytest.mark.parametrize("fault", sorted(PERSISTENT))
def test_a_persistent_bad_answer_is_an_error_never_a_verdict(make_judge, tone_spec, fault: str) -> None:
    judge = make_judge(tone_spec, model=ScriptedChatModel(judge=list(PERSISTENT[fault])))
    with pytest.raises(VerdictParseError, match="no valid verdict in 3 attempts"):
        judge.judge(inputs="q", outputs="a")
    [result] = judge.batch([{"inputs": "q", "outputs": "a"}], return_exceptions=True)
    assert isinstance(result, Exception)  # the explicit "no verdict" the caller must handle


@pytest.mark.parametrize("error", [TimeoutError("read timed out"), RateLimitError("slow down")])
def test_persistent_transient_errors_are_retried_a_bounded_number_of_times(make_judge, tone_spec, error) -> None:
    model = ScriptedChatModel(judge=[error] * 3)
    with pytest.raises(type(error)):
        make_judge(tone_spec, model=model).judge(inputs="q", outputs="a")
    assert len(model.calls_of("verdict")) == 3


@pytest.mark.parametrize("fault", ["unparseable", "timeout", "rate_limit", "empty_answer"])
def test_alignment_keeps_failed_feedback_pending_and_distills_it_next_time(make_judge, tone_spec, fault) -> None:
    failure: Any = {
        "unparseable": "{not json",
        "timeout": TimeoutError("t"),
        "rate_limit": RateLimitError("r"),
        "empty_answer": "",
    }[fault]
    broken = {"on": True}

    def distill(prompt: str) -> Any:
        if broken["on"]:
            if isinstance(failure, Exception):
                raise failure
            return failure
        return rationale_distiller(prompt)

    judge = make_judge(
        tone_spec, model=ScriptedChatModel(distill=distill), alignment_context=AlignmentContext(max_distill_attempts=2)
    )
    feedback = [Feedback(id="x", inputs="q", outputs="a", value=True, rationale="Mind x1a x1b.")]
    report = judge.align(feedback)
    assert report["pending"] == ["x"] and report["failed_batches"][0]["feedback_ids"] == ["x"]
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"x"}  # the episode is kept
    broken["on"] = False
    assert judge.align([])["distilled"] == ["x"]
    assert [g["feedback_ids"] for g in judge.guidelines()] == [["x"]]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_qdrant_is_a_clear_error_before_anything_is_written(tone_spec, tmp_path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    model = ScriptedChatModel()
    with MemAlignJudge(tone_spec, model, embeddings=BagOfWordsEmbeddings(), home=tmp_path, qdrant_url=url) as judge:
        with pytest.raises(EpisodicStoreError, match=f"Qdrant at {url} failed.*MEMALIGN_QDRANT_URL"):
            judge.align([Feedback(inputs="q", outputs="a", value=True, rationale="r")])
        assert model.calls == []  # refused at validation: no LLM spent, nothing written
        assert judge.history() == [] and judge.guidelines() == []
        with pytest.raises(EpisodicStoreError, match=url):
            judge.judge(inputs="q", outputs="a")


def test_a_qdrant_store_wraps_client_failures(tmp_path) -> None:
    store = QdrantEpisodicStore(url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(EpisodicStoreError, match="Check that the server is running"):
        store.check()
    with pytest.raises(EpisodicStoreError):
        store.feedback_ids("j", "ns")
    store.close()
