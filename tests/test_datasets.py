"""Reading feedback and evaluation sets: built-in layouts, column mappings, and rows that do not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memalign_graph import Boolean, Categorical, Feedback, JudgeSpec, Pairwise, Score
from memalign_graph.evaluation.datasets import DatasetError, detect_format, load_examples, parse_column

DATA = Path(__file__).resolve().parent.parent / "examples" / "data"
SHARED_LLMBAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmbar" / "Natural.json"

HALUEVAL = JudgeSpec(name="halu", instructions="Does it hallucinate?", output=Categorical(labels=("yes", "no")))
RUBRIC = JudgeSpec(
    name="rubric", instructions="Score it.", output=Score(low=1, high=5), fields=("inputs", "outputs", "expectations")
)
PAIRWISE = JudgeSpec(name="pair", instructions="Which follows the instruction?", output=Pairwise())
TONE = JudgeSpec(name="tone", instructions="Is the reply appropriate?", output=Boolean())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[object]) -> Path:
    return write(path, "".join(json.dumps(row) + "\n" for row in rows))


def test_normalized_halueval_sample_is_read_with_ids_labels_and_rationales() -> None:
    path = DATA / "halueval_sample.jsonl"
    assert detect_format(path) == "normalized"
    dataset = load_examples(path, HALUEVAL)
    assert len(dataset.examples) == 40 and not dataset.skipped
    first = dataset.examples[0]
    assert (first.id, first.where, first.value) == ("halueval-general-88", "halueval_sample.jsonl:1", "yes")
    assert first.inputs == {"user_query": first.inputs["user_query"]} and first.rationale.startswith("Hallucinated")
    assert first.expectations is None  # empty in the file, and this judge does not read expectations
    assert sorted({example.value for example in dataset.examples}) == ["no", "yes"]


def test_normalized_rubric_rows_carry_their_rubric_in_expectations() -> None:
    dataset = load_examples(DATA / "prometheus_sample.jsonl", RUBRIC)
    assert len(dataset.examples) == 12
    first = dataset.examples[0]
    assert isinstance(first.value, int) and 1 <= first.value <= 5
    assert set(first.expectations) == {"reference_answer", "criteria", "score_descriptions"}


def test_a_field_the_judge_does_not_read_is_an_error_naming_the_line() -> None:
    no_expectations = JudgeSpec(name="rubric", instructions="Score it.", output=Score(low=1, high=5))
    with pytest.raises(DatasetError, match=r"prometheus_sample.jsonl:1: row.expectations: .*does not read"):
        load_examples(DATA / "prometheus_sample.jsonl", no_expectations)
    dataset = load_examples(DATA / "prometheus_sample.jsonl", no_expectations, columns={"expectations": None})
    assert len(dataset.examples) == 12


def test_llmbar_pairs_become_pairwise_examples(tmp_path: Path) -> None:
    items = [
        {"input": "Say hi.", "output_1": "hi", "output_2": "Hello there, friend!", "label": 1},
        {"input": "Count to 2.", "output_1": "1", "output_2": "1, 2", "label": 2},
    ]
    path = write(tmp_path / "Natural.json", json.dumps(items, indent=2))
    assert detect_format(path) == "llmbar"
    dataset = load_examples(path, PAIRWISE)
    assert [example.value for example in dataset.examples] == ["A", "B"]
    assert dataset.examples[0].outputs == ["hi", "Hello there, friend!"]
    assert [example.id for example in dataset.examples] == ["llmbar-Natural-0", "llmbar-Natural-1"]
    assert dataset.examples[1].where == "Natural.json[1]"


@pytest.mark.skipif(not SHARED_LLMBAR.is_file(), reason="the shared LLMBar data is not beside this checkout")
def test_the_shared_llmbar_file_reads_whole() -> None:
    dataset = load_examples(SHARED_LLMBAR, PAIRWISE)
    assert len(dataset.examples) == 100 and {example.value for example in dataset.examples} == {"A", "B"}


def test_csv_with_a_column_mapping_and_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "reviews.csv",
        'question,answer,verdict,why\n"I was charged twice!","Two charges are recorded.",no,"Cold: apologise first."\n'
        '"Where is my order?","It ships today,\nwith tracking.",yes,\n',
    )
    mapping = {"inputs": "question", "outputs": "answer", "value": "verdict", "rationale": "why"}
    dataset = load_examples(path, TONE, columns=mapping)
    first, second = dataset.examples
    assert (first.value, first.rationale, first.where) == (False, "Cold: apologise first.", "reviews.csv:2")
    assert (second.value, second.rationale, second.where) == (True, None, "reviews.csv:3")
    assert second.outputs == "It ships today,\nwith tracking."
    # No id column: the id is derived from the example, as the library derives a feedback's id.
    assert first.id == Feedback(inputs=first.inputs, outputs=first.outputs, value=False).feedback_id


def test_csv_columns_gathered_for_a_pairwise_judge(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.csv", "prompt,left,right,better\nSay hi.,hi,hello,B\n")
    columns = {"inputs": "prompt", "outputs": parse_column("left,right"), "value": "better"}
    (example,) = load_examples(path, PAIRWISE, columns=columns).examples
    assert (example.outputs, example.value) == (["hi", "hello"], "B")


def test_dotted_columns_reach_into_nested_json(tmp_path: Path) -> None:
    rows = [{"q": {"text": "Is 2 prime?"}, "a": "Yes.", "gold": {"ok": True}, "id": 7}]
    path = jsonl(tmp_path / "nested.jsonl", rows)
    (example,) = load_examples(path, TONE, columns={"inputs": "q.text", "outputs": "a", "value": "gold.ok"}).examples
    assert (example.inputs, example.value, example.id) == ("Is 2 prime?", True, "7")


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", '{"inputs": "a", "outputs": "b", "value": true}\n\n{"inputs": "c", oops}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:3: not valid JSON"):
        load_examples(path, TONE)


def test_a_value_that_does_not_fit_the_judge_is_reported_and_skipped_only_on_request(tmp_path: Path) -> None:
    rows = [
        {"inputs": "a", "outputs": "b", "value": True},
        {"inputs": "c", "outputs": "d", "value": "maybe"},
        {"inputs": "e", "outputs": "f", "value": "no"},
        ["not", "an", "object"],
    ]
    path = jsonl(tmp_path / "data.jsonl", rows)
    with pytest.raises(DatasetError, match=r"data.jsonl:2: value: expected true or false"):
        load_examples(path, TONE)
    dataset = load_examples(path, TONE, skip_invalid=True)
    assert [example.value for example in dataset.examples] == [True, False]
    assert [problem.split(":")[1] for problem in dataset.skipped] == ["2", "4"]


def test_what_each_use_requires(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "data.jsonl", [{"inputs": "a", "outputs": "b"}, {"inputs": "c", "outputs": "d", "rationale": "r"}]
    )
    with pytest.raises(DatasetError, match=r"data.jsonl:1: no expert verdict in column 'value'"):
        load_examples(path, TONE)
    with pytest.raises(DatasetError, match=r"data.jsonl:1: no expert verdict .* and no rationale"):
        load_examples(path, TONE, require="feedback")
    assert len(load_examples(path, TONE, require="inputs").examples) == 2
    with pytest.raises(DatasetError, match=r"data.jsonl:1: no column 'question' for the judged inputs"):
        load_examples(path, TONE, require="inputs", columns={"inputs": "question"})


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    rows = [
        {"id": "x", "inputs": "a", "outputs": "b", "value": True},
        {"id": "x", "inputs": "c", "outputs": "d", "value": True},
    ]
    with pytest.raises(DatasetError, match=r"data.jsonl:2: id 'x' is already used at data.jsonl:1"):
        load_examples(jsonl(tmp_path / "data.jsonl", rows), TONE)


def test_feedback_keeps_the_label_the_rationale_or_both(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "inputs": "x", "outputs": "y", "value": False, "rationale": "Too curt."},
        {"id": "b", "inputs": "z", "outputs": "w", "value": True},
    ]
    first, second = load_examples(jsonl(tmp_path / "data.jsonl", rows), TONE).examples
    assert first.feedback() == Feedback(id="a", inputs="x", outputs="y", value=False, rationale="Too curt.")
    assert first.feedback(rationale=False).rationale is None
    assert first.feedback(value=False).value is None
    assert second.feedback(value=False) is None  # nothing left to say


def test_files_that_cannot_be_read_say_why(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot tell the format"):
        load_examples(write(tmp_path / "data.txt", "x"), TONE)
    with pytest.raises(DatasetError, match="no such file"):
        load_examples(tmp_path / "missing.jsonl", TONE, file_format="jsonl")
    with pytest.raises(DatasetError, match="no usable rows"):
        load_examples(write(tmp_path / "empty.jsonl", "\n"), TONE)
    with pytest.raises(DatasetError, match="unknown fields"):
        load_examples(DATA / "halueval_sample.jsonl", HALUEVAL, columns={"label": "x"})


def test_columns_from_the_command_line() -> None:
    assert parse_column("question") == "question"
    assert parse_column("left, right") == ("left", "right")
    assert parse_column("none") is None and parse_column("-") is None


def test_text_no_store_can_keep_is_refused_with_its_line(tmp_path: Path) -> None:
    rows = [{"inputs": "a", "outputs": "b", "value": True, "rationale": "bad\u0000byte"}]
    with pytest.raises(DatasetError, match=r"data.jsonl:1: rationale: contains a NUL character"):
        load_examples(jsonl(tmp_path / "data.jsonl", rows), TONE)
