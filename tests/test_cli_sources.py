"""`memalign align --from-mlflow` and `--from-langsmith`: the same command, feedback read from the tools."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

import mlflow_store
from langsmith_server import langsmith_double
from memalign_graph.cli import main

FAKE = ["--model", "fake", "--embeddings", "fake", "--no-progress"]
RULE = "Answer false when the text mentions cold."


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "polite.yaml"
    path.write_text("name: polite\ninstructions: Is the reply polite?\noutput: {kind: boolean}\n")
    return path


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    for name in ("MEMALIGN_MODEL", "MEMALIGN_EMBEDDINGS", "MEMALIGN_HOME", "LANGSMITH_TRACING"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str | Path) -> tuple[int, str, str]:
        code = main([str(arg) for arg in argv] + ["--home", str(tmp_path / "home")])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_align_from_an_mlflow_experiment(cli, spec_file: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("support-bot")
        for question, answer, value in (("refund?", "Done. Cold reply.", False), ("parcel?", "So sorry!", True)):
            trace = mlflow_store.log_trace(experiment, question, answer)
            mlflow_store.log_feedback(trace, "polite", value, RULE if not value else None, mlflow_store.human())
    finally:
        mlflow.set_tracking_uri(previous)
    command = ["align", "--from-mlflow", "support-bot", "--tracking-uri", uri, "--spec", spec_file, *FAKE]
    code, out, err = cli(*command)
    assert code == 0, err
    assert "on MLflow experiment support-bot (assessment 'polite'): 2 feedback read" in out and "added 2" in out
    code, out, err = cli(*command)
    assert code == 0 and "added 0" in out and "unchanged 2" in out  # importing twice changes nothing
    code, out, err = cli("align", "--from-mlflow", "nope", "--tracking-uri", uri, "--judge", "polite", *FAKE)
    assert code == 2 and err.strip() == (
        "memalign: error: --from-mlflow: no experiment 'nope' in the tracking store; give its name or id"
    )


def test_align_from_a_langsmith_project(cli, spec_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with langsmith_double() as double:
        project = double.add_project("support-bot")
        run = double.add_run(project, {"question": "refund?"}, {"answer": "Done. Cold reply."})
        double.add_feedback(run, "tone", source="app", score=0, comment=RULE)
        monkeypatch.setenv("LANGSMITH_ENDPOINT", double.url)
        monkeypatch.setenv("LANGSMITH_API_KEY", "unused")
        code, out, err = cli("align", "--from-langsmith", "support-bot", "--key", "tone", "--spec", spec_file, *FAKE)
    assert code == 0, err
    assert "on LangSmith project support-bot (feedback key 'tone'): 1 feedback read" in out and "added 1" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["feedback.jsonl", "--from-mlflow", "x"], "give one source of feedback: FILE, --from-mlflow EXPERIMENT"),
        ([], "give one source of feedback"),
        (["--from-langsmith", "p", "--assessment", "a"], "--assessment goes with --from-mlflow"),
    ],
)
def test_one_source_at_a_time(cli, spec_file: Path, argv: list[str], message: str) -> None:
    code, out, err = cli("align", *argv, "--spec", spec_file, *FAKE)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
