"""Bad input, by example and by property: refused with the field named, never stored, never a crash."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import ValidationError

from memalign_graph import Boolean, Categorical, Feedback, InvalidValueError, JudgeSpec, Pairwise, Score
from memalign_graph.model_calls import StructuredOutputError, parse_json

BAD_FEEDBACK: dict[str, tuple[dict[str, Any], str]] = {
    "empty inputs": ({"inputs": "", "outputs": "a", "value": True}, r"feedback\[0\].inputs: required"),
    "whitespace inputs": ({"inputs": " \n\t", "outputs": "a", "value": True}, r"feedback\[0\].inputs: required"),
    "missing outputs": ({"inputs": "q", "value": True}, r"feedback\[0\].outputs: required"),
    "missing inputs": ({"outputs": "a", "value": True}, r"feedback\[0\]: inputs: Field required"),
    "no value or rationale": ({"inputs": "q", "outputs": "a"}, "needs a value, a rationale, or both"),
    "value of the wrong type": ({"inputs": "q", "outputs": "a", "value": "maybe"}, r"feedback\[0\].value"),
    "bad judge verdict": (
        {"inputs": "q", "outputs": "a", "value": True, "judge_verdict": 3},
        r"feedback\[0\].judge_verdict",
    ),
    "NUL character": ({"inputs": "q\x00", "outputs": "a", "value": True}, r"feedback\[0\].inputs: contains a NUL"),
    "lone surrogate": (
        {"inputs": "bad \ud800 text", "outputs": "a", "value": True},
        r"feedback\[0\].inputs: not valid Unicode at character 4",
    ),
    "bytes": ({"inputs": b"raw", "outputs": "a", "value": True}, r"feedback\[0\].inputs: bytes are not text"),
    "surrogate in a dict": ({"inputs": {"q": "x\udcff"}, "outputs": "a", "value": True}, r"feedback\[0\].inputs.q"),
    "surrogate in a rationale": (
        {"inputs": "q", "outputs": "a", "rationale": "\udcff"},
        r"feedback\[0\].rationale: not valid Unicode",
    ),
    "unknown field": (
        {"inputs": "q", "outputs": "a", "value": True, "expectations": "ref"},
        "does not read 'expectations'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FEEDBACK))
def test_bad_feedback_is_refused_naming_the_field_and_stores_nothing(make_judge, tone_spec, case: str) -> None:
    record, message = BAD_FEEDBACK[case]
    judge = make_judge(tone_spec)
    with pytest.raises(InvalidValueError, match=message):
        judge.align([record])
    assert judge.history() == [] and judge.episodic_store.count("support_tone", "default") == 0


@pytest.mark.parametrize(
    "inputs",
    [{"question": "q", "context": ["a", "b"]}, ["step one", "step two"], [HumanMessage("hi"), AIMessage("hello")], 42],
    ids=["dict", "list", "messages", "number"],
)
def test_non_string_inputs_are_judged_and_stored(make_judge, tone_spec, inputs: Any) -> None:
    judge = make_judge(tone_spec)
    report = judge.align([Feedback(inputs=inputs, outputs="a", value=True, rationale="Mind x1a.")])
    assert len(report["added"]) == 1
    assert judge.judge(inputs=inputs, outputs="a")["metadata"]["episode_ids"] == report["added"]


def test_very_large_inputs_are_cut_to_the_budget_with_a_warning(make_judge, tone_spec, model, caplog) -> None:
    judge = make_judge(tone_spec)
    huge = "word " * 200_000  # ~1 MB
    with caplog.at_level(logging.WARNING, logger="memalign_graph"):
        judge.judge(inputs=huge, outputs="a")
    prompt = model.calls_of("verdict")[-1]["user"]
    assert len(prompt) < 10_000 and "characters truncated" in prompt
    assert any("inputs: 1000000 characters cut to 4000" in message for message in caplog.messages)


VALUE_TYPES = [
    Boolean(),
    Categorical(labels=("Yes", "no", "N/A")),
    Score(low=1, high=5),
    Score(low=0, high=1, integer=False),
    Pairwise(),
]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("output", VALUE_TYPES, ids=lambda output: output.describe()[:20])
@given(value=JSONISH)
@settings(max_examples=150, deadline=None)
def test_value_validation_accepts_canonically_or_refuses_clearly(output, value: Any) -> None:
    try:
        canonical = output.validate_value(value, field="value")
    except InvalidValueError as error:
        assert str(error).startswith("value: ")
        return
    assert output.validate_value(canonical) == canonical  # canonical values are fixed points


@given(
    record=st.dictionaries(
        st.sampled_from(["inputs", "outputs", "expectations", "value", "rationale", "id", "judge_verdict"]),
        JSONISH,
        max_size=7,
    )
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_records_are_accepted_or_refused_never_crash(record: dict[str, Any]) -> None:
    spec = JudgeSpec(
        name="prop",
        instructions="ok?",
        output=Boolean(),
        fields=("inputs", "outputs", "expectations"),
        optional_fields=("expectations",),
    )
    try:
        parsed = Feedback.model_validate(record)
        spec.validate_record(parsed.as_input(), where="feedback[0]")
    except (InvalidValueError, ValidationError):
        return


@given(text=st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_model_answers_parse_to_an_object_or_a_structured_error(text: str) -> None:
    try:
        parsed = parse_json(text)
    except StructuredOutputError as error:
        assert error.raw == text
        return
    assert isinstance(parsed, dict)
