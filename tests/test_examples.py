"""The runnable examples, each run with fake models (LangChain's own fakes and ours)."""

from __future__ import annotations

import importlib.util
import sys
from itertools import cycle
from pathlib import Path
from types import ModuleType

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from fakes import BagOfWordsEmbeddings, ScriptedChatModel, learned_rule_policy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # typing resolves the example's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_reflection_agent_revises_until_the_aligned_judge_passes(tmp_path: Path, capsys) -> None:
    reflection = load("reflection_agent")
    writer = GenericFakeChatModel(
        messages=cycle(
            [
                AIMessage("Your refund is processed."),
                AIMessage("We are so sorry your order arrived broken. Your refund arrives within 3 days."),
            ]
        )
    )

    def judge_policy(system: str, user: str) -> dict:
        draft = user.split("Judge this example:")[1]
        apology_rule = "open with an apology" in system  # learned from the experts' feedback
        ok = "sorry" in draft.lower() or not apology_rule
        return {"rationale": "Apologise first." if not ok else "Kind and clear.", "value": ok}

    judge_model = ScriptedChatModel(judge=judge_policy)
    final = reflection.main(writer=writer, judge_model=judge_model, embeddings=BagOfWordsEmbeddings(), home=tmp_path)
    assert final["rounds"] == 2 and final["review"]["score"] is True
    assert "sorry" in final["draft"].lower()
    first_review = judge_model.calls_of("verdict")[0]
    assert "open with an apology" in first_review["system"]  # the judge node used aligned memory
    out = capsys.readouterr().out
    assert "--- judge: revise --- Apologise first." in out and "--- judge: pass ---" in out


def test_reflection_agent_stops_after_max_rounds(tmp_path: Path) -> None:
    reflection = load("reflection_agent")
    writer = GenericFakeChatModel(messages=cycle([AIMessage("No.")]))
    judge_model = ScriptedChatModel(judge=lambda s, u: {"rationale": "Still curt.", "value": False})
    final = reflection.main(
        writer=writer, judge_model=judge_model, embeddings=BagOfWordsEmbeddings(), home=tmp_path, max_rounds=2
    )
    assert final["rounds"] == 2 and final["review"]["score"] is False


def test_expert_review_loop_changes_the_judges_mind_after_one_correction(tmp_path: Path, capsys) -> None:
    review = load("expert_review")
    correction = {"action": "correct", "value": "false", "rationale": "Answer false when the text mentions recorded."}
    seen: list[dict] = []

    def expert(pending: dict) -> dict:
        seen.append(pending)
        return correction

    model = ScriptedChatModel(judge=learned_rule_policy(default=True))
    result = review.main(expert=expert, model=model, embeddings=BagOfWordsEmbeddings(), home=tmp_path)
    assert seen[0]["verdict"]["score"] is True
    assert result["verdict"]["score"] is True and result["updated_verdict"]["score"] is False
    out = capsys.readouterr().out
    assert "judge:    True" in out and "after one correction, judge: False" in out
    assert "learned: Answer false when the text mentions recorded." in out


def test_expert_review_accepting_changes_nothing(tmp_path: Path) -> None:
    review = load("expert_review")
    model = ScriptedChatModel(judge=learned_rule_policy(default=True))
    result = review.main(
        expert=lambda pending: {"action": "accept"}, model=model, embeddings=BagOfWordsEmbeddings(), home=tmp_path
    )
    assert result["review"] == {"action": "accept", "value": None, "rationale": None}
    assert "updated_verdict" not in result
