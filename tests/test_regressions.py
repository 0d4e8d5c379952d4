"""The regression report: the seen examples judged before and after an alignment, fixed and broken named.

The fake judge applies a guideline "Answer X when the text mentions Y." before anything else, else copies
the expert's verdict on the nearest past example: so a new guideline can break an example it used to get
right, which is exactly what the report must catch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes import in_memory_judge
from memalign_graph import Categorical, Feedback, JudgeSpec, MemAlignJudge
from memalign_graph.cli import main
from memalign_graph.regressions import compare_verdicts, describe_regressions

SPEC = JudgeSpec(name="halu", instructions="Does it hallucinate?", output=Categorical(labels=("yes", "no")))
CHEESE = Feedback(id="cheese", inputs="What is the moon made of?", outputs="The moon is made of cheese.", value="yes")
ROCK = Feedback(
    id="rock",
    inputs="What is the moon's surface?",
    outputs="The moon's surface is rock and dust.",
    value="no",
    rationale="Answer no when the text mentions moon.",  # too broad: it breaks 'cheese'
)
OCEAN = Feedback(id="ocean", inputs="How deep is the ocean?", outputs="About 11 km at its deepest.", value="no")


@pytest.fixture
def judge() -> Iterator[MemAlignJudge]:
    with in_memory_judge(SPEC) as opened:
        yield opened


def test_an_alignment_that_breaks_a_right_verdict_is_reported(judge: MemAlignJudge) -> None:
    first = judge.align([CHEESE, OCEAN], check_regressions=True)["regressions"]
    assert first["checked"] == 2 and first["broken"] == []
    assert first["unchanged_right"] == ["cheese"]  # with empty memory the fake answers the first label, 'yes'
    assert first["fixed"] == ["ocean"]  # and after, its own episode says 'no'
    report = judge.align([ROCK], check_regressions=True)
    regressions = report["regressions"]
    assert regressions["checked"] == 3
    assert regressions["broken"] == ["cheese"]  # the new guideline overrides its own episode
    assert regressions["fixed"] == ["rock"]  # before: its nearest example (cheese) said 'yes'
    assert regressions["unchanged_right"] == ["ocean"] and regressions["unchanged_wrong"] == []
    assert {"id": "cheese", "expected": "yes", "before": "yes", "after": "no"} in regressions["changes"]
    assert regressions["agreement_before"] == pytest.approx(2 / 3) and regressions["agreement_after"] == 2 / 3
    assert "broken: cheese: expert 'yes', judge 'yes' before, 'no' now" in describe_regressions(regressions)


def test_without_the_option_nothing_is_judged(judge: MemAlignJudge) -> None:
    report = judge.align([CHEESE])
    assert "regressions" not in report


def test_a_corrected_value_is_the_one_compared_and_forgotten_examples_are_not_checked(judge: MemAlignJudge) -> None:
    judge.align([CHEESE, OCEAN])
    corrected = CHEESE.model_copy(update={"value": "no"})
    regressions = judge.align([corrected], forget=["ocean"], check_regressions=True)["regressions"]
    assert regressions["checked"] == 1  # ocean was forgotten
    assert regressions["broken"] == [] and regressions["fixed"] == ["cheese"]  # now agrees with the correction


def test_compare_counts_no_verdict_as_not_matching() -> None:
    report = compare_verdicts({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": None, "c": 3}, {"a": None, "b": 2, "c": 3})
    assert report["broken"] == ["a"] and report["fixed"] == ["b"] and report["unchanged_right"] == ["c"]


def test_the_command_exits_3_when_a_right_verdict_breaks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "halu.yaml"
    spec.write_text(
        "name: halu\ninstructions: Does it hallucinate?\noutput: {kind: categorical, labels: ['yes', 'no']}\n"
    )
    options = ["--spec", str(spec), "--home", str(tmp_path / "home"), "--model", "fake", "--embeddings", "fake"]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(
        "\n".join(item.model_dump_json(include={"id", "inputs", "outputs", "value"}) for item in [CHEESE, OCEAN])
    )
    second.write_text(ROCK.model_dump_json(include={"id", "inputs", "outputs", "value", "rationale"}))
    assert main(["align", str(first), "--check-regressions", "--no-progress", *options]) == 0
    out = capsys.readouterr().out
    assert "regressions: 2 seen examples re-judged before and after: 0 broken" in out
    assert main(["align", str(second), "--check-regressions", "--no-progress", *options]) == 3
    captured = capsys.readouterr()
    assert "1 broken, 1 fixed, 1 unchanged (1 right, 0 wrong)" in captured.out
    assert "broken: cheese: expert 'yes', judge 'yes' before, 'no' now" in captured.out
    assert "1 verdicts that matched the expert no longer do" in captured.err
