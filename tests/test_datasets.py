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


# -- hostile files: every problem is one line with its place, and skippable ------------------------------


def test_bytes_that_are_not_utf8_name_their_line_and_the_rest_is_read(tmp_path: Path) -> None:
    good = json.dumps({"inputs": "q", "outputs": "a", "value": True}).encode()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"inputs": "\xff\xfe", "value": true}\n' + good + b"\n")
    with pytest.raises(DatasetError, match=r"^mixed.jsonl:1: not valid UTF-8 \(byte 0xff at column 13\)"):
        load_examples(path, TONE)
    dataset = load_examples(path, TONE, skip_invalid=True)
    assert len(dataset.examples) == 1 and dataset.skipped[0].startswith("mixed.jsonl:1: not valid UTF-8")
    csv_path = tmp_path / "mixed.csv"
    csv_path.write_bytes(b"inputs,outputs,value\n\xff,a,true\nq,a,true\n")
    dataset = load_examples(csv_path, TONE, skip_invalid=True)
    assert len(dataset.examples) == 1 and dataset.skipped == [
        "mixed.csv:2: not valid UTF-8 (byte 0xff at column 1); save the file as UTF-8."
    ]
    array = tmp_path / "bad.json"
    array.write_bytes(b'[{"inputs": "\xc3("}]')
    with pytest.raises(DatasetError, match=r"^bad.json: not valid UTF-8 \(byte 0xc3 at offset 13\)"):
        load_examples(array, TONE)


def test_a_binary_file_is_refused_by_line_not_by_traceback(tmp_path: Path) -> None:
    path = tmp_path / "image.jsonl"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DatasetError, match=r"^image.jsonl:\d+: "):
        load_examples(path, TONE)
    with pytest.raises(DatasetError, match="no usable rows"):
        load_examples(path, TONE, skip_invalid=True)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "id: must be 1 to 200 characters (this one has 0)"),
        ("x" * 201, "id: must be 1 to 200 characters (this one has 201)"),
        (10**400, "id: a number of more than 200 digits is not an id"),
        ([1, 2], "id: [1, 2] is not an id; use a string or a whole number"),
    ],
)
def test_a_bad_id_is_named_with_its_line(tmp_path: Path, given: object, problem: str) -> None:
    path = jsonl(tmp_path / "ids.jsonl", [{"id": given, "inputs": "q", "outputs": "a", "value": True}])
    with pytest.raises(DatasetError) as raised:
        load_examples(path, TONE)
    assert str(raised.value) == f"ids.jsonl:1: {problem}."


def test_numbers_no_store_or_python_can_hold_are_refused_by_line(tmp_path: Path) -> None:
    path = write(tmp_path / "n.jsonl", '{"inputs": "q", "outputs": ' + "9" * 400 + ', "value": true}\n')
    with pytest.raises(DatasetError, match="n.jsonl:1: row.outputs: a whole number this large cannot be stored"):
        load_examples(path, TONE)
    path = write(tmp_path / "m.jsonl", '{"inputs": "q", "outputs": ' + "9" * 5000 + ', "value": true}\n')
    with pytest.raises(DatasetError, match=r"m.jsonl:1: not usable JSON \(Exceeds the limit"):
        load_examples(path, TONE)
    score = JudgeSpec(name="s", instructions="Score.", output=Score(low=1, high=5))
    path = jsonl(tmp_path / "s.jsonl", [{"inputs": "q", "outputs": "a", "value": 10**400}])
    with pytest.raises(DatasetError, match=r"s.jsonl:1: value: expected a number from 1 to 5, got 1000"):
        load_examples(path, score)


def test_a_csv_cell_of_a_long_transcript_is_read(tmp_path: Path) -> None:
    """Python's csv refuses cells over 128 KiB by default; the judge cuts long fields to its budget anyway."""
    import csv

    path = tmp_path / "long.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["inputs", "outputs", "value"], ["q " * 100_000, "a", "true"]])
    [example] = load_examples(path, TONE).examples
    assert len(example.inputs) == 200_000


def test_the_normalized_layout_is_told_by_its_documented_fields(tmp_path: Path) -> None:
    """`{id, inputs, outputs, expectations, label, rationale, meta}` without a `task_type` key was read as
    generic JSONL: `label` was ignored and the experts' verdicts were stored as null."""
    row = {"id": "r1", "inputs": "q", "outputs": "a", "label": "yes", "rationale": "Made up.", "meta": {}}
    path = jsonl(tmp_path / "rows.jsonl", [row])
    assert detect_format(path) == "normalized"
    [example] = load_examples(path, HALUEVAL).examples
    assert (example.id, example.value, example.rationale) == ("r1", "yes", "Made up.")
    generic = jsonl(tmp_path / "generic.jsonl", [{"inputs": "q", "outputs": "a", "value": "yes", "label": "x"}])
    assert detect_format(generic) == "jsonl"
