"""Output types and judge specs: one validation, used for feedback and verdicts alike."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memalign_graph import Boolean, Categorical, InvalidValueError, JudgeSpec, Pairwise, Score


def test_boolean_accepts_booleans_and_plain_words() -> None:
    output = Boolean()
    assert output.validate_value(True) is True
    assert output.validate_value(" No ") is False
    with pytest.raises(InvalidValueError, match="value: expected true or false"):
        output.validate_value("maybe")
    with pytest.raises(InvalidValueError):
        output.validate_value(1)


def test_categorical_keeps_labels_exactly_as_given() -> None:
    output = Categorical(labels=("Pass", "FAIL", "needs-review"))
    assert output.validate_value("FAIL") == "FAIL"
    assert output.validate_value("fail") == "FAIL"  # one label it can mean: canonical spelling returned
    with pytest.raises(InvalidValueError, match=r"verdict: 'unknown' is not one of the judge's labels"):
        output.validate_value("unknown", field="verdict")


def test_categorical_labels_differing_only_in_case_need_an_exact_match() -> None:
    output = Categorical(labels=("A", "a"))
    assert output.validate_value("a") == "a"
    with pytest.raises(InvalidValueError):
        output.validate_value(" A  ".lower() + "x")


def test_categorical_refuses_duplicate_labels() -> None:
    with pytest.raises(ValidationError, match="duplicates"):
        Categorical(labels=("yes", "yes"))


@pytest.mark.parametrize("value, expected", [(1, 1), ("5", 5), (3.0, 3)])
def test_score_accepts_numbers_in_range(value: object, expected: int) -> None:
    assert Score(low=1, high=5).validate_value(value) == expected


@pytest.mark.parametrize("value", [0, 6, "high", True, 2.5, float("nan")])
def test_score_refuses_out_of_range_or_non_numbers(value: object) -> None:
    with pytest.raises(InvalidValueError, match="value"):
        Score(low=1, high=5).validate_value(value)


def test_fractional_score_when_asked() -> None:
    assert Score(low=0, high=1, integer=False).validate_value("0.25") == 0.25


def test_score_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="low"):
        Score(low=5, high=1)


def test_pairwise_choices() -> None:
    output = Pairwise()
    assert [output.validate_value(v) for v in ("a", "B", "TIE")] == ["A", "B", "tie"]
    with pytest.raises(InvalidValueError, match="'A', 'B' or 'tie'"):
        output.validate_value("C")


def test_spec_requires_inputs_and_a_safe_name() -> None:
    with pytest.raises(ValidationError, match="inputs"):
        JudgeSpec(name="j", instructions="x", output=Boolean(), fields=("outputs",))
    with pytest.raises(ValidationError, match="name"):
        JudgeSpec(name="bad name/with slash", instructions="x", output=Boolean())
    with pytest.raises(ValidationError, match="instructions"):
        JudgeSpec(name="j", instructions="   ", output=Boolean())


def test_spec_round_trips_through_json() -> None:
    spec = JudgeSpec(
        name="rubric",
        instructions="Score it.",
        output=Score(low=1, high=5),
        fields=("inputs", "outputs", "expectations"),
        optional_fields=("expectations",),
    )
    assert JudgeSpec.model_validate_json(spec.model_dump_json()) == spec


def test_optional_fields_are_really_optional() -> None:
    spec = JudgeSpec(
        name="ref",
        instructions="Match the reference?",
        output=Boolean(),
        fields=("inputs", "outputs", "expectations"),
        optional_fields=("expectations",),
    )
    assert spec.validate_record({"inputs": "q", "outputs": "a"}, where="input") == {"inputs": "q", "outputs": "a"}
    with pytest.raises(InvalidValueError, match=r"input.outputs: required"):
        spec.validate_record({"inputs": "q"}, where="input")


def test_a_field_the_judge_does_not_read_is_refused() -> None:
    spec = JudgeSpec(name="plain", instructions="ok?", output=Boolean())
    with pytest.raises(InvalidValueError, match=r"feedback\[2\].expectations: judge 'plain' does not read"):
        spec.validate_record({"inputs": "q", "outputs": "a", "expectations": "ref"}, where="feedback[2]")


def test_empty_inputs_are_refused() -> None:
    spec = JudgeSpec(name="plain", instructions="ok?", output=Boolean())
    with pytest.raises(InvalidValueError, match=r"input.inputs: required by judge 'plain' but empty"):
        spec.validate_record({"inputs": "   ", "outputs": "a"}, where="input")


def test_pairwise_outputs_become_a_and_b() -> None:
    spec = JudgeSpec(name="pair", instructions="Which follows the instruction?", output=Pairwise())
    assert spec.validate_record({"inputs": "q", "outputs": ["x", "y"]}, where="input")["outputs"] == {
        "A": "x",
        "B": "y",
    }
    with pytest.raises(InvalidValueError, match="two responses"):
        spec.validate_record({"inputs": "q", "outputs": "only one"}, where="input")
