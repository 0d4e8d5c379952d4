"""Guidelines answer to their evidence: a draft that contradicts the experts on the feedback it cites is
refused before it enters memory, and the report says which example and what each side said.

Before: an expert rationale that said "Answer True when the text mentions reply." while the expert's own
value was False became a guideline and flipped 10 of 10 later verdicts of an instruction-following model.
"""

from __future__ import annotations

from fakes import ScriptedChatModel, learned_rule_policy
from memalign_graph import AlignmentContext, Boolean, Feedback, JudgeSpec, Score
from memalign_graph.alignment import describe_distillation
from memalign_graph.alignment.evidence import refuse_contradicted

SPEC = JudgeSpec(name="helpful", instructions="Is the reply helpful?", output=Boolean())
LATER = [{"inputs": f"question {n}", "outputs": f"our reply number {n}"} for n in range(10)]


def contradicting() -> Feedback:
    return Feedback(
        id="fb-bad",
        inputs="where is my parcel?",
        outputs="We sent a reply to your email.",
        value=False,
        rationale="Answer True when the text mentions reply.",
    )


def test_a_guideline_that_contradicts_its_own_expert_is_refused_and_verdicts_keep(make_judge) -> None:
    model = ScriptedChatModel(judge=learned_rule_policy(default=False))  # follows any guideline it is given
    judge = make_judge(SPEC, model=model)
    before = [verdict["score"] for verdict in judge.batch(LATER)]
    report = judge.align([contradicting()])
    after = [verdict["score"] for verdict in judge.batch(LATER)]

    assert judge.guidelines() == [] and before == after == [False] * 10
    [outcome] = report["distillation"]
    assert outcome["dropped"] == [
        {
            "text": "Answer True when the text mentions reply.",
            "reason": "contradicts the expert (on feedback fb-bad the guideline implies True, the expert said False)",
        }
    ]
    assert "1 contradicts the expert" in describe_distillation(report)[0]
    [check] = model.calls_of("evidence_check")
    assert "Expert's verdict" not in check["user"] and "Answer True when" not in check["system"]
    assert report["pending"] == [] and "fb-bad" in judge.memory.ledger()  # the feedback itself is kept


def test_a_guideline_its_evidence_supports_goes_in(make_judge) -> None:
    judge = make_judge(SPEC)
    good = contradicting().model_copy(update={"id": "fb-good", "value": True})
    report = judge.align([good])
    assert [g["text"] for g in judge.guidelines()] == ["Answer True when the text mentions reply."]
    assert report["distillation"][0]["dropped"] == []


def test_a_check_that_keeps_failing_leaves_the_feedback_pending_not_unchecked(make_judge) -> None:
    model = ScriptedChatModel(evidence=["not JSON", "still not", "nope"])
    judge = make_judge(SPEC, model=model, alignment_context=AlignmentContext(max_distill_attempts=3))
    report = judge.align([contradicting().model_copy(update={"value": True})])
    assert judge.guidelines() == [] and report["pending"] == ["fb-bad"]
    assert report["failed_batches"][0]["error"].startswith("evidence check: StructuredOutputError")


def test_the_check_can_be_turned_off(make_judge) -> None:
    model = ScriptedChatModel()
    judge = make_judge(SPEC, model=model, alignment_context=AlignmentContext(check_evidence=False))
    judge.align([contradicting()])
    assert model.calls_of("evidence_check") == [] and len(judge.guidelines()) == 1


def test_on_a_score_scale_only_a_verdict_half_the_scale_away_refutes() -> None:
    spec = JudgeSpec(name="rubric", instructions="Score it.", output=Score(low=1, high=5))
    drafts = [{"text": "Shade it.", "feedback_ids": ["a"]}, {"text": "Flip it.", "feedback_ids": ["a"]}]
    records = {"a": {"id": "a", "value": 5}}
    checks = [(0, "a"), (1, "a")]
    answer = {"verdicts": [{"check": 1, "verdict": 4}, {"check": 2, "verdict": 2}]}
    kept, dropped = refuse_contradicted(spec, drafts, records, checks, answer)  # type: ignore[arg-type]
    assert [draft["text"] for draft in kept] == ["Shade it."] and dropped[0]["text"] == "Flip it."
