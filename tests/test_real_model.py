"""The real-model tier: SmolLM2-135M-Instruct behind the real llama-cpp-python OpenAI-compatible server.

The product is driven the way a user drives it: `MEMALIGN_MODEL=openai:...` with `MEMALIGN_BASE_URL`
pointing at the server, so ChatOpenAI, the server's refusal of `json_schema` and the adaptation to what it
accepts are all real. A model this small shows that the loop runs, not how well it judges: the tests
assert only what holds for any honest model (a valid verdict or a clear VerdictParseError; guidelines that
cite only feedback that was shown), never its accuracy.

Off with MEMALIGN_SKIP_REAL_MODEL=1 (the local-llm extra compiles llama.cpp); `.ci/run` requires it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llama_server import llama_server, require_real_model
from memalign_graph import (
    Boolean,
    Categorical,
    Feedback,
    JudgeSpec,
    MemAlignJudge,
    Pairwise,
    Score,
    VerdictParseError,
)
from memalign_graph.config import resolve_chat_model
from memalign_graph.model_notices import LOCAL_MODEL_NOTICE, describe_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = "openai:smollm2-135m-instruct"
# How each output type is answered; every one is also checked against its spec.
OUTPUTS = [
    Boolean(),
    Categorical(labels=("polite", "rude")),
    Score(low=1, high=5),
    Pairwise(),
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model_file = require_real_model()
    with llama_server(model_file, tmp_path_factory.mktemp("llama") / "server.log") as url:
        yield url


@pytest.fixture
def served_model(base_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The model as a user configures it: a model string and the server's URL in the environment."""
    monkeypatch.setenv("MEMALIGN_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    monkeypatch.delenv("MEMALIGN_STRUCTURED_OUTPUT", raising=False)
    return resolve_chat_model(MODEL)


def load_quickstart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart_real", EXAMPLES / "quickstart.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_honest(outcome: Any, spec: JudgeSpec) -> None:
    """A verdict of the spec's type (and never one the server refused to produce), or a clear parse error."""
    if isinstance(outcome, VerdictParseError):
        assert str(outcome).strip()
        return
    assert not isinstance(outcome, Exception), f"{type(outcome).__name__}: {outcome}"
    assert spec.output.validate_value(outcome["score"]) == outcome["score"]
    # The server refuses json_schema (HTTP 500 naming response_format): the judge must have moved on.
    assert outcome["metadata"]["structured_output"] in {"json_mode", "function_calling", "prompt"}


def test_the_quick_start_runs_end_to_end(served_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    quickstart = load_quickstart()
    result = quickstart.main(model=served_model, home=tmp_path / "memory", train_size=4, test_size=4)
    out = capsys.readouterr().out
    assert "agreement on 4 held-out examples" in out and "distillation:" in out
    assert 0 <= result["before"] <= 1 and 0 <= result["after"] <= 1
    report, train = result["report"], set(result["train_ids"])
    assert set(report["distilled"]) | set(report["pending"]) == train
    for guideline in result["guidelines"]:
        assert guideline["text"].strip() and set(guideline["feedback_ids"]) <= train


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda output: output.kind)
def test_every_output_type_gets_a_valid_verdict_or_a_clear_error(
    served_model: Any, output: Any, tmp_path: Path
) -> None:
    spec = JudgeSpec(name=f"reply_{output.kind}", instructions="Judge the reply to the customer.", output=output)
    pair = isinstance(output, Pairwise)
    outputs: Any = ["Sorry, refund sent.", "Go away."] if pair else "Sorry, your refund is on its way."
    with MemAlignJudge(spec, served_model, home=tmp_path) as judge:
        [outcome] = judge.batch([{"inputs": "Where is my refund?", "outputs": outputs}], return_exceptions=True)
    assert_honest(outcome, spec)


def test_alignment_cites_only_shown_feedback_and_forgetting_removes_it(served_model: Any, tmp_path: Path) -> None:
    spec = JudgeSpec(name="support_tone", instructions="Is the reply polite?", output=Boolean())
    feedback = [
        Feedback(id="apology", inputs="My parcel is late.", outputs="Sorry! It ships today.", value=True,
                 rationale="An apology with a concrete next step is polite."),
        Feedback(id="blame", inputs="My parcel is late.", outputs="You should have ordered earlier.", value=False,
                 rationale="Blaming the customer is rude, however accurate."),
        Feedback(id="curt", inputs="Can I change my address?", outputs="No.", value=False,
                 rationale="A bare refusal with no reason or alternative is rude."),
    ]  # fmt: skip
    shown = {item.id for item in feedback}
    with MemAlignJudge(spec, served_model, home=tmp_path) as judge:
        report = judge.align(feedback)
        assert set(report["distilled"]) | set(report["pending"]) == shown
        for guideline in judge.guidelines():
            assert set(guideline["feedback_ids"]) <= shown
        assert judge.episodic_store.feedback_ids(spec.name, "default") == shown

        judge.forget(["blame"])
        assert all("blame" not in guideline["feedback_ids"] for guideline in judge.guidelines())
        assert judge.episodic_store.feedback_ids(spec.name, "default") == shown - {"blame"}
        [outcome] = judge.batch([{"inputs": "Is my order late?", "outputs": "Yes, sorry."}], return_exceptions=True)
        assert_honest(outcome, spec)


def test_asyncio_run_twice_in_one_process(served_model: Any, tmp_path: Path) -> None:
    spec = JudgeSpec(name="support_tone", instructions="Is the reply polite?", output=Boolean())
    with MemAlignJudge(spec, served_model, home=tmp_path) as judge:
        for reply in ("Thanks for waiting!", "Whatever."):
            [outcome] = asyncio.run(judge.abatch([{"inputs": "Hello?", "outputs": reply}], return_exceptions=True))
            assert_honest(outcome, spec)


def test_the_local_model_runs_in_process_and_says_what_it_is(tmp_path: Path) -> None:
    require_real_model()
    model = resolve_chat_model("local")
    assert LOCAL_MODEL_NOTICE in describe_model(model)
    spec = JudgeSpec(name="support_tone", instructions="Is the reply polite?", output=Boolean())
    replies = ["Hi! How can I help?", "What now?", "Good morning, thanks for writing."]
    with MemAlignJudge(spec, model, home=tmp_path) as judge:
        # In parallel, as a batch runs: two threads generating at once in one llama.cpp model crash the process.
        outcomes = judge.batch([{"inputs": "Hello?", "outputs": reply} for reply in replies], return_exceptions=True)
    for outcome in outcomes:
        if not isinstance(outcome, VerdictParseError):
            assert not isinstance(outcome, Exception), f"{type(outcome).__name__}: {outcome}"
            assert isinstance(outcome["score"], bool)
