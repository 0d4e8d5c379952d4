"""What to review next: examples ranked by instability + novelty + memory effect, a known-hard one first.

The fake judge applies a guideline "Answer X when the text mentions Y." first, else copies the expert's
verdict on the nearest past example, else answers the first label; without memory it always answers the
first label. So an example a guideline reaches, unlike anything in memory, is where memory changes the
verdict on new ground: the hard one an expert should see first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes import ScriptedChatModel, in_memory_judge
from memalign_graph import Categorical, Feedback, JudgeSpec, MemAlignJudge, Pairwise, Score
from memalign_graph.cli import main
from memalign_graph.review_queue import Candidate, instability_of, memory_effect_of, rank_for_review, teach_score

SPEC = JudgeSpec(name="halu", instructions="Does it hallucinate?", output=Categorical(labels=("yes", "no")))
MEMORY = [
    Feedback(id="everest", inputs="How tall is Everest?", outputs="Everest is 8,849 metres tall.", value="yes"),
    Feedback(id="hamlet", inputs="Who wrote Hamlet?", outputs="William Shakespeare wrote Hamlet.", value="yes"),
    Feedback(
        id="rock",
        inputs="What is the lunar surface like?",
        outputs="Lunar rock and dust.",
        value="no",
        rationale="Answer no when the text mentions moon.",
    ),
]
EASY = [
    Candidate(id="easy-1", inputs="How tall is Everest, exactly?", outputs="Everest is 8,849 metres tall."),
    Candidate(id="easy-2", inputs="Who wrote Hamlet?", outputs="Hamlet: William Shakespeare wrote it."),
]
HARD = Candidate(id="hard", inputs="Is there water on the moon?", outputs="Yes, vast oceans cover the moon.")


@pytest.fixture
def judge() -> Iterator[MemAlignJudge]:
    with in_memory_judge(SPEC) as opened:
        opened.align(MEMORY)
        yield opened


def test_a_known_hard_example_ranks_first(judge: MemAlignJudge) -> None:
    queue = rank_for_review(judge, [*EASY, HARD])  # the hard one last in the file
    first = queue.items[0]
    assert first["id"] == "hard" and first["rank"] == 1
    assert first["memory_effect"] == 1.0 and first["verdicts"] == ["no", "no"] and first["without_memory"] == "yes"
    assert first["novelty"] > max(item["novelty"] for item in queue.items[1:])
    assert all(item["memory_effect"] == 0.0 and item["score"] < 0.5 for item in queue.items[1:])
    assert first["score"] == pytest.approx(first["instability"] + first["novelty"] + first["memory_effect"])


def test_examples_memory_holds_are_left_out_and_the_limit_holds(judge: MemAlignJudge) -> None:
    known = MEMORY[0]
    again = Candidate(id="row-7", inputs=known.inputs, outputs=known.outputs)  # same content, another id
    queue = rank_for_review(judge, [again, *EASY, HARD], limit=2)
    assert queue.in_memory == ["row-7"] and [item["id"] for item in queue.items] == ["hard", "easy-2"]


def test_a_pairwise_judge_with_a_position_bias_is_unstable_under_order_swap() -> None:
    spec = JudgeSpec(name="pick", instructions="Which follows the instruction?", output=Pairwise())
    first_always = ScriptedChatModel(judge=lambda system, user: {"rationale": "The first.", "value": "A"})
    with in_memory_judge(spec, first_always) as judge:
        queue = rank_for_review(judge, [Candidate(id="p", inputs="Say hi.", outputs=["hi", "hello there"])])
    item = queue.items[0]
    assert item["verdicts"] == ["A", "B"]  # 'A' on the swapped pair is response B of the original
    assert item["instability"] == 1.0 and item["novelty"] == 1.0  # empty memory: nothing alike


def test_the_rule_by_hand() -> None:
    labels, scores = Categorical(labels=("yes", "no")), Score(low=1, high=5)
    assert instability_of(["yes", "yes"], labels) == 0.0 and instability_of(["yes", "no"], labels) == 1.0
    assert instability_of(["yes", None], labels) == 1.0  # no verdict is a verdict of its own
    assert instability_of([2, 4], scores) == 0.5 and instability_of([3], scores) == 0.0
    assert memory_effect_of("no", "yes", labels) == 1.0 and memory_effect_of(5, 2, scores) == 0.75
    assert teach_score(0.5, 0.25, 1.0, (1.0, 1.0, 1.0)) == 1.75
    assert teach_score(0.5, 0.25, 1.0, (2.0, 0.0, 1.0)) == 2.0


def test_the_command_lists_the_queue_and_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "halu.yaml"
    spec.write_text(
        "name: halu\ninstructions: Does it hallucinate?\noutput: {kind: categorical, labels: ['yes', 'no']}\n"
    )
    options = ["--home", str(tmp_path / "home"), "--model", "fake", "--embeddings", "fake"]
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(
        "\n".join(f.model_dump_json(include={"id", "inputs", "outputs", "value", "rationale"}) for f in MEMORY)
    )
    assert main(["align", str(feedback), "--spec", str(spec), "--no-progress", *options]) == 0
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(json.dumps({"id": c.id, "inputs": c.inputs, "outputs": c.outputs}) for c in [*EASY, HARD])
    )
    capsys.readouterr()
    out_file = tmp_path / "queue.jsonl"
    assert main(["review-queue", str(rows), "--judge", "halu", "-n", "2", "-o", str(out_file), *options]) == 0
    out = capsys.readouterr().out
    assert "the 2 of 3 rows an expert's verdict would teach most" in out
    assert out.splitlines()[3].split()[:3] == ["1", "rows.jsonl:3", "hard"]
    ranked = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [item["id"] for item in ranked] == ["hard", "easy-2"] and ranked[0]["example"]["inputs"] == HARD.inputs
    assert main(["review-queue", str(rows), "--judge", "halu", "-n", "0", *options]) == 2
