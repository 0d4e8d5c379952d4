"""The quick start end to end with a scripted model: real sample data, real graphs, no network."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fakes import FEEDBACK_PATTERN, BagOfWordsEmbeddings, ScriptedChatModel, learned_rule_policy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DISCLAIMER_RULE = "Answer yes when the text mentions language."


def load_quickstart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLES / "quickstart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def disclaimer_distiller(prompt: str) -> dict[str, Any]:
    """Notices what HaluEval's annotators did: an 'As an AI language model' disclaimer marked as hallucinated.

    It learns from the feedback shown (expert verdict and marked spans), not from the test rows, and
    credits the guideline to every feedback item it comes from.
    """
    cited = [
        int(ref)
        for ref, body in FEEDBACK_PATTERN.findall(prompt)
        if "Expert's verdict: yes" in body and "language model" in body.split("<expert_rationale>", 1)[-1]
    ]
    return {"guidelines": [{"text": DISCLAIMER_RULE, "sources": cited}] if cited else []}


def scripted_model() -> ScriptedChatModel:
    # Says 'no' (no hallucination) unless a guideline's word appears in the judged example.
    return ScriptedChatModel(judge=learned_rule_policy(default="no"), distill=disclaimer_distiller)


def test_quickstart_learns_from_train_feedback_and_improves_held_out_agreement(tmp_path: Path, capsys) -> None:
    quickstart = load_quickstart()
    model = scripted_model()
    result = quickstart.main(model=model, embeddings=BagOfWordsEmbeddings(), home=tmp_path / "memory")

    rows = {row["id"]: row for row in quickstart.load_rows()}
    train, test = result["train_ids"], result["test_ids"]
    assert len(train) == 20 and len(test) == 20 and not set(train) & set(test)
    assert sorted(rows[i]["label"] for i in train) == ["no"] * 10 + ["yes"] * 10
    # An unaligned judge that always says 'no' agrees on exactly the held-out 'no' rows.
    assert result["before"] == sum(rows[i]["label"] == "no" for i in test) / len(test) == 0.5
    assert result["after"] > result["before"]
    assert result["align_seconds"] >= 0

    [guideline] = result["guidelines"]
    assert guideline["text"] == DISCLAIMER_RULE
    assert len(guideline["feedback_ids"]) >= 2 and set(guideline["feedback_ids"]) <= set(train)
    assert "embedding" not in guideline

    # The feedback carried the judge's own earlier verdicts, so the distiller saw its mistakes.
    distilled = "".join(call["user"] for call in model.calls_of("distilled_guidelines"))
    assert len(re.findall(r'<feedback ref="\d+">', distilled)) == len(train)  # named by refs, not ids
    assert distilled.count("Judge's verdict: no (the judge was wrong)") == 10
    # 40 verdicts before alignment, 20 after, and the later ones were given the guideline.
    verdict_calls = model.calls_of("verdict")
    assert len(verdict_calls) == 60
    assert all(DISCLAIMER_RULE in call["system"] for call in verdict_calls[40:])

    out = capsys.readouterr().out
    assert f"agreement on 20 held-out examples: 50% -> {result['after']:.0%}" in out
    assert "model: ScriptedChatModel" in out and DISCLAIMER_RULE in out and "alignment took" in out


def test_quickstart_starts_unaligned_when_home_is_not_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEMALIGN_HOME", raising=False)
    quickstart = load_quickstart()
    first = quickstart.main(model=scripted_model(), embeddings=BagOfWordsEmbeddings(), train_size=4)
    second = quickstart.main(model=scripted_model(), embeddings=BagOfWordsEmbeddings(), train_size=4)
    assert first["before"] == second["before"] and first["after"] == second["after"]
    assert list(tmp_path.iterdir()) == []  # memory went to a temporary folder, not ./.memalign


def test_quickstart_rejects_a_split_that_leaves_nothing_held_out() -> None:
    quickstart = load_quickstart()
    with pytest.raises(ValueError, match="train_size"):
        quickstart.split(quickstart.load_rows(), 40)
    with pytest.raises(ValueError, match="train_size"):
        quickstart.split(quickstart.load_rows(), 7)


def test_script_without_a_model_exits_2_and_says_what_to_set(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMALIGN_")}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "MEMALIGN_MODEL" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_shipped_samples_match_their_readme() -> None:
    data = EXAMPLES / "data"
    halueval = [json.loads(line) for line in (data / "halueval_sample.jsonl").read_text().splitlines()]
    assert len(halueval) == 40
    assert sorted(row["label"] for row in halueval) == ["no"] * 20 + ["yes"] * 20
    assert all(row["rationale"] for row in halueval if row["label"] == "yes")
    assert all(len(row["outputs"]) < 1200 for row in halueval)
    prometheus = [json.loads(line) for line in (data / "prometheus_sample.jsonl").read_text().splitlines()]
    assert len(prometheus) == 12 and {row["label"] for row in prometheus} == {1, 2, 3, 4, 5}
    keys = {
        "id",
        "dataset",
        "task_type",
        "inputs",
        "outputs",
        "expectations",
        "label",
        "rationale",
        "label_source",
        "meta",
    }
    assert all(set(row) == keys for row in [*halueval, *prometheus])
    assert (data / "LICENSE-HaluEval").read_text().startswith("MIT License")
    assert "Apache License" in (data / "LICENSE-prometheus-eval").read_text()
