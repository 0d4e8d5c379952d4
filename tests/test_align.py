"""The alignment graph: distill in parallel, dedupe, write both memories, keep failures pending."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from fakes import BagOfWordsEmbeddings, ScriptedChatModel, rationale_distiller
from memalign_graph import AlignmentContext, Categorical, Feedback, InvalidValueError, JudgeSpec, MemAlignJudge, Score
from memalign_graph.alignment import describe_distillation


def fb(n: int, rationale: str | None = None, value: Any = True, **extra: Any) -> Feedback:
    return Feedback(
        id=f"fb-{n}",
        inputs=f"customer message {n}",
        outputs=f"bot reply {n}",
        value=value,
        rationale=rationale,
        **extra,
    )


def test_alignment_writes_guidelines_with_provenance_and_episodes(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    report = judge.align(
        [
            fb(1, "Answer true when the text mentions sorry.", judge_verdict=False),
            fb(2, value=False),  # label only
        ]
    )
    assert report["added"] == ["fb-1", "fb-2"] and report["distilled"] == ["fb-1", "fb-2"]
    assert report["pending"] == [] and report["failed_batches"] == []
    [guideline] = judge.guidelines()
    assert guideline["text"] == "Answer true when the text mentions sorry."
    assert guideline["feedback_ids"] == ["fb-1"]
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"fb-1", "fb-2"}
    [hit] = judge.episodic_store.search(
        "support_tone", "default", judge.embeddings.embed_query("customer message 1 bot reply 1"), 1
    )
    assert hit["feedback_id"] == "fb-1" and hit["judge_was_wrong"] is True and hit["judge_verdict"] is False


def test_rationale_only_feedback_is_distilled_and_kept(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    report = judge.align(
        [Feedback(inputs="hi", outputs="hello", rationale="Answer true when the text mentions hello.")]
    )
    assert len(report["added"]) == 1 and len(judge.guidelines()) == 1


def test_distillation_fans_out_in_parallel_and_respects_the_bound(make_judge, tone_spec) -> None:
    model = ScriptedChatModel(gather=3, gather_kind="distilled_guidelines")  # three wait until three are in flight
    judge = make_judge(tone_spec, model=model, max_concurrency=3, alignment_context=AlignmentContext(batch_size=2))
    judge.align([fb(n, f"Mind x{n}a x{n}b x{n}c.") for n in range(12)])
    distills = model.calls_of("distilled_guidelines")
    assert len(distills) == 6
    shown = "".join(c["user"] for c in distills)
    assert sorted(re.findall(r"Mind x(\d+)a", shown), key=int) == [str(n) for n in range(12)]
    assert model.max_in_flight == 3  # parallel, and never more than max_concurrency
    assert len(judge.guidelines()) == 12


def test_each_distill_call_sees_current_guidelines_and_the_judges_verdict(make_judge, tone_spec, model) -> None:
    judge = make_judge(tone_spec)
    judge.align([fb(1, "Answer true when the text mentions sorry.")])
    judge.align([fb(2, "Be kind.", judge_verdict=False, value=True)])
    second = model.calls_of("distilled_guidelines")[-1]["user"]
    assert "Answer true when the text mentions sorry." in second.split("Feedback to learn from:")[0]
    assert "Judge's verdict: false (the judge was wrong)" in second
    assert "Expert's verdict: true" in second


def test_dedupe_merges_the_same_guideline_and_unites_provenance(make_judge, tone_spec, model) -> None:
    judge = make_judge(tone_spec)
    judge.align([fb(1, "Open with an apology, close with an offer of support.")])
    report = judge.align([fb(2, "Open with an apology, close with an offer of support.")])
    [guideline] = judge.guidelines()
    assert guideline["feedback_ids"] == ["fb-1", "fb-2"]
    assert report["guidelines_merged"] == [guideline["id"]] and report["guidelines_added"] == []
    assert model.calls_of("guideline_comparison") == []  # identical: no LLM needed


def close_call_judge(
    make_judge: Callable[..., MemAlignJudge], spec: JudgeSpec, answer: dict[str, str]
) -> tuple[MemAlignJudge, ScriptedChatModel]:
    model = ScriptedChatModel(close_call=[answer])
    judge = make_judge(
        spec, model=model, alignment_context=AlignmentContext(merge_similarity=0.99, close_call_similarity=0.5)
    )
    judge.align([fb(1, "Prefer certified views over raw tables when answering data questions.")])
    judge.align([fb(2, "Prefer certified views over raw tables when answering revenue questions.")])
    return judge, model


def test_close_calls_go_to_the_llm_which_may_merge(make_judge, tone_spec) -> None:
    judge, model = close_call_judge(
        make_judge, tone_spec, {"relation": "same", "merged": "Prefer certified views over raw tables."}
    )
    assert len(model.calls_of("guideline_comparison")) == 1
    [guideline] = judge.guidelines()
    assert guideline["text"] == "Prefer certified views over raw tables."
    assert guideline["feedback_ids"] == ["fb-1", "fb-2"]


def test_a_conflict_keeps_one_guideline_following_the_newer_feedback(make_judge, tone_spec) -> None:
    judge, _ = close_call_judge(
        make_judge, tone_spec, {"relation": "conflict", "merged": "Raw tables are fine for revenue."}
    )
    [guideline] = judge.guidelines()
    assert guideline["text"] == "Raw tables are fine for revenue." and guideline["feedback_ids"] == ["fb-1", "fb-2"]


def test_different_guidelines_both_stay(make_judge, tone_spec) -> None:
    judge, _ = close_call_judge(make_judge, tone_spec, {"relation": "different", "merged": ""})
    assert len(judge.guidelines()) == 2


def test_a_failed_batch_stays_pending_and_is_distilled_next_time(make_judge, tone_spec) -> None:
    broken = {"on": True}

    def flaky(prompt: str) -> dict[str, Any]:
        if broken["on"] and "Mind x3a" in prompt:
            raise TimeoutError("model timed out")
        return rationale_distiller(prompt)

    model = ScriptedChatModel(distill=flaky)
    judge = make_judge(tone_spec, model=model, alignment_context=AlignmentContext(batch_size=2, max_distill_attempts=2))
    report = judge.align([fb(n, f"Mind x{n}a x{n}b x{n}c.") for n in range(1, 5)])
    assert report["pending"] == ["fb-3", "fb-4"]
    assert report["failed_batches"] == [{"feedback_ids": ["fb-3", "fb-4"], "error": "TimeoutError: model timed out"}]
    assert sorted(id for g in judge.guidelines() for id in g["feedback_ids"]) == ["fb-1", "fb-2"]
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"fb-1", "fb-2", "fb-3", "fb-4"}

    broken["on"] = False
    calls_before = len(model.calls_of("distilled_guidelines"))
    report = judge.align([])
    assert report["distilled"] == ["fb-3", "fb-4"] and report["pending"] == []
    assert len(model.calls_of("distilled_guidelines")) == calls_before + 1
    assert sorted(id for g in judge.guidelines() for id in g["feedback_ids"]) == ["fb-1", "fb-2", "fb-3", "fb-4"]


def test_unparsable_distillation_is_retried_then_reported(make_judge, tone_spec) -> None:
    model = ScriptedChatModel(distill=["not json", "still not json", '{"guidelines": 5}'])
    judge = make_judge(tone_spec, model=model, alignment_context=AlignmentContext(max_distill_attempts=3))
    report = judge.align([fb(1, "A rule.")])
    assert report["pending"] == ["fb-1"] and "guidelines" in report["failed_batches"][0]["error"]
    assert judge.guidelines() == []


def test_models_without_structured_output_use_the_json_fallback(make_judge, tone_spec) -> None:
    model = ScriptedChatModel(structured=False)
    judge = make_judge(tone_spec, model=model)
    judge.align([fb(1, "Answer true when the text mentions sorry.")])
    assert [g["text"] for g in judge.guidelines()] == ["Answer true when the text mentions sorry."]
    assert "Reply with one JSON object" in model.calls_of("distilled_guidelines")[0]["user"]
    verdict = judge.judge(inputs="hello", outputs="so sorry")
    assert verdict["score"] is True


def test_realigning_embeds_only_new_records_and_skips_known_ones(
    make_judge, tone_spec, model, embeddings: BagOfWordsEmbeddings
) -> None:
    judge = make_judge(tone_spec)
    first = [fb(n, f"Mind x{n}a x{n}b x{n}c.") for n in range(5)]
    judge.align(first)
    embedded_after_first = len(embeddings.embedded)
    distills_after_first = len(model.calls_of("distilled_guidelines"))
    report = judge.align([*first, fb(5, "Rule five is new.")])
    assert report["unchanged"] == [f"fb-{n}" for n in range(5)] and report["added"] == ["fb-5"]
    new_texts = embeddings.embedded[embedded_after_first:]
    episode_texts = [text for text in new_texts if text.startswith("customer message")]
    assert episode_texts == ["customer message 5\n\nbot reply 5"]
    assert len(model.calls_of("distilled_guidelines")) == distills_after_first + 1
    again = judge.align(first)
    assert again["added"] == [] and again["unchanged"] == [f"fb-{n}" for n in range(5)]


def test_bad_feedback_is_refused_naming_the_field_and_nothing_is_written(make_judge) -> None:
    spec = JudgeSpec(name="grader", instructions="Grade it.", output=Categorical(labels=("good", "bad")))
    judge = make_judge(spec)
    judge.align([Feedback(id="ok", inputs="q", outputs="a", value="good", rationale="Fine.")])
    with pytest.raises(InvalidValueError, match=r"feedback\[1\].value: 'excellent' is not one of the judge's labels"):
        judge.align(
            [
                Feedback(id="new", inputs="q2", outputs="a", value="good"),
                Feedback(inputs="q3", outputs="a", value="excellent"),
            ]
        )
    with pytest.raises(InvalidValueError, match=r"feedback\[0\].inputs: required by judge 'grader' but empty"):
        judge.align([{"inputs": "  ", "outputs": "a", "value": "bad"}])
    with pytest.raises(InvalidValueError, match=r"feedback\[0\]: .*needs a value, a rationale, or both"):
        judge.align([{"inputs": "q", "outputs": "a"}])
    assert judge.episodic_store.feedback_ids("grader", "default") == {"ok"}
    assert len(judge.history()) == 1


def test_scores_out_of_range_are_refused(make_judge) -> None:
    spec = JudgeSpec(name="rubric", instructions="Score 1-5.", output=Score(low=1, high=5))
    judge = make_judge(spec)
    with pytest.raises(InvalidValueError, match=r"feedback\[0\].value: 7 is outside the judge's scale 1 to 5"):
        judge.align([Feedback(inputs="q", outputs="a", value=7)])


def test_duplicate_ids_with_different_content_in_one_batch_are_refused(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    with pytest.raises(InvalidValueError, match=r"feedback\[1\].id: 'x' is also feedback\[0\] with different content"):
        judge.align(
            [
                Feedback(id="x", inputs="q", outputs="a", value=True),
                Feedback(id="x", inputs="q", outputs="a", value=False),
            ]
        )


def test_ids_are_derived_from_the_judged_example(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    first = judge.align([Feedback(inputs="q", outputs="a", value=True)])
    corrected = judge.align([Feedback(inputs="q", outputs="a", value=False, rationale="Too curt.")])
    assert corrected["updated"] == first["added"]
    assert judge.episodic_store.count("support_tone", "default") == 1


def test_keep_only_mistakes_as_episodes_when_configured(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec, alignment_context=AlignmentContext(keep_episodes="mistakes"))
    judge.align([fb(1, value=True, judge_verdict=True), fb(2, value=True, judge_verdict=False), fb(3, value=False)])
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"fb-2", "fb-3"}


def test_guidelines_over_budget_are_consolidated_with_provenance_united(make_judge, tone_spec) -> None:
    def merge_all(prompt: str) -> dict[str, Any]:
        ids = re.findall(r"^- \[(gl-[0-9a-f]+)\]", prompt, re.MULTILINE)
        return {"guidelines": [{"text": "Be warm and accurate.", "replaces": ids}]}

    model = ScriptedChatModel(consolidate=merge_all)
    judge = make_judge(tone_spec, model=model, alignment_context=AlignmentContext(guideline_token_budget=60))
    judge.align([fb(n, f"Mind x{n}a x{n}b x{n}c and be careful here.") for n in range(4)])
    assert len(model.calls_of("consolidated_guidelines")) == 1
    [guideline] = judge.guidelines()
    assert guideline["text"] == "Be warm and accurate."
    assert guideline["feedback_ids"] == ["fb-0", "fb-1", "fb-2", "fb-3"]
    judge.forget(["fb-0", "fb-1", "fb-2", "fb-3"])
    assert judge.guidelines() == []


def test_a_failed_consolidation_keeps_every_guideline(make_judge, tone_spec) -> None:
    model = ScriptedChatModel(consolidate=[TimeoutError("slow")])
    judge = make_judge(tone_spec, model=model, alignment_context=AlignmentContext(guideline_token_budget=30))
    judge.align([fb(n, f"Mind x{n}a x{n}b x{n}c.") for n in range(4)])
    assert len(judge.guidelines()) == 4


def test_a_consolidation_that_accounts_for_some_guidelines_keeps_the_rest(make_judge, tone_spec) -> None:
    def merge_two(prompt: str) -> dict[str, Any]:
        ids = re.findall(r"^- \[(gl-[0-9a-f]+)\]", prompt, re.MULTILINE)
        return {"guidelines": [{"text": "Merged pair.", "replaces": ids[:2] + ["gl-unknown"]}]}

    model = ScriptedChatModel(consolidate=merge_two)
    judge = make_judge(tone_spec, model=model, alignment_context=AlignmentContext(guideline_token_budget=30))
    judge.align([fb(n, f"Mind x{n}a x{n}b x{n}c.") for n in range(4)])
    texts = sorted(g["text"] for g in judge.guidelines())
    assert len(texts) == 3 and "Merged pair." in texts
    assert sorted(i for g in judge.guidelines() for i in g["feedback_ids"]) == [f"fb-{n}" for n in range(4)]


def test_alignments_of_one_judge_are_serialized(make_judge, tone_spec) -> None:
    model = ScriptedChatModel(latency_s=0.05)
    judge = make_judge(tone_spec, model=model)
    errors: list[BaseException] = []

    def align(start: int) -> None:
        try:
            judge.align([fb(n, f"Mind x{n}a x{n}b x{n}c.") for n in range(start, start + 3)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=align, args=(start,)) for start in (0, 10, 20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = {f"fb-{n}" for start in (0, 10, 20) for n in range(start, start + 3)}
    assert {i for g in judge.guidelines() for i in g["feedback_ids"]} == expected
    assert judge.episodic_store.feedback_ids("support_tone", "default") == expected
    assert len(judge.history()) == 3


def test_distillation_can_be_switched_off_and_the_feedback_waits_for_it(make_judge, tone_spec, model) -> None:
    judge = make_judge(tone_spec, alignment_context=AlignmentContext(distill=False))
    report = judge.align([fb(1, "Mind x1a x1b.")])
    assert report["added"] == ["fb-1"] and report["distilled"] == [] and judge.guidelines() == []
    assert model.calls_of("distilled_guidelines") == []
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"fb-1"}
    later = make_judge(tone_spec)  # the same memory, distillation on
    assert later.align([])["distilled"] == ["fb-1"] and len(later.guidelines()) == 1


def test_a_close_call_is_asked_once_for_drafts_that_repeat_it(make_judge, tone_spec) -> None:
    model = ScriptedChatModel(close_call=lambda prompt: {"relation": "same", "merged": ""})
    judge = make_judge(
        tone_spec,
        model=model,
        alignment_context=AlignmentContext(batch_size=1, merge_similarity=0.99, close_call_similarity=0.5),
    )
    judge.align([fb(1, "Prefer certified views over raw tables when answering data questions.")])
    judge.align([fb(n, "Prefer certified views over raw tables when answering revenue questions.") for n in (2, 3, 4)])
    assert len(model.calls_of("guideline_comparison")) == 1
    [guideline] = judge.guidelines()
    assert guideline["feedback_ids"] == ["fb-1", "fb-2", "fb-3", "fb-4"]


def test_the_report_says_per_batch_what_was_proposed_kept_and_dropped(make_judge, tone_spec) -> None:
    answer = {
        "guidelines": [
            {"text": "Apologies count as polite.", "sources": [2, 9]},  # ref 9 was never shown
            # The schema's wording parroted back, with a word changed, as SmolLM2-135M did.
            {"text": "The ref number of the feedback items this guideline comes from.", "sources": [1]},
            {"text": "  ", "sources": [1]},
            {"text": "Thanks are polite.", "sources": [7]},  # cites only what it was not shown
            {"text": "Be kind. " * 80, "sources": [1]},
        ]
    }
    judge = make_judge(tone_spec, model=ScriptedChatModel(distill=[answer]))
    report = judge.align([fb(1, "Sorry is fine."), fb(2, "Apologising is polite.")])
    [outcome] = report["distillation"]
    assert outcome["feedback_ids"] == ["fb-1", "fb-2"]
    assert (outcome["proposed"], outcome["kept"], outcome["merged"]) == (5, 1, 0)
    assert [d["reason"] for d in outcome["dropped"]] == [
        "repeats the question's wording, not a guideline",
        "empty",
        "cites only feedback it was not shown (7)",
        "too long (719 characters, at most 480)",
    ]
    [guideline] = judge.guidelines()
    assert guideline["feedback_ids"] == ["fb-2"]  # ref 2 is fb-2; the unknown ref is ignored


def test_the_summary_says_why_nothing_was_learned(make_judge, tone_spec) -> None:
    parroted = {"guidelines": [{"text": "string", "sources": [1]}, {"text": "Be nice.", "sources": [4]}]}
    judge = make_judge(tone_spec, model=ScriptedChatModel(distill=[parroted]))
    lines = describe_distillation(judge.align([fb(1, "Sorry is fine.")]))
    assert lines == [
        "distillation: 1 call, 2 guidelines proposed: 0 kept, 0 merged, 2 dropped "
        "(1 repeats the question's wording, not a guideline; 1 cites only feedback it was not shown)",
        "  0 guidelines learned: every proposal was dropped, for the reasons above",
    ]
    silent = make_judge(tone_spec, model=ScriptedChatModel(distill=[{"guidelines": []}]))
    assert describe_distillation(silent.align([fb(2, "Thanks are fine.")]))[-1] == (
        "  0 guidelines learned: the model proposed none (its answers held an empty list)"
    )


def test_a_model_answer_is_bounded_in_proposals_and_citations(make_judge, tone_spec) -> None:
    """One answer with 5,000 guidelines was accepted whole (79 s); refs of thousands of digits or infinity
    broke the batch."""
    flood = {"guidelines": [{"text": f"Rule number {n} applies.", "sources": [1]} for n in range(5000)]}
    odd = {"guidelines": [{"text": "Sorry counts as polite.", "sources": [float("inf"), "9" * 5000, 10**400, 1]}]}
    judge = make_judge(tone_spec, model=ScriptedChatModel(distill=[flood]))
    [outcome] = judge.align([fb(1, "Sorry is fine.")])["distillation"]
    assert len(judge.guidelines()) <= 10 and outcome["dropped"][0]["text"] == "4990 more proposals"
    assert outcome["dropped"][0]["reason"] == "past the 10 proposals a batch of 1 feedback may make"
    judge = make_judge(tone_spec, model=ScriptedChatModel(distill=[odd]))
    report = judge.align([fb(2, "Sorry is fine.")])
    learned = {g["text"]: g["feedback_ids"] for g in judge.guidelines()}
    assert report["failed_batches"] == [] and learned["Sorry counts as polite."] == ["fb-2"]
