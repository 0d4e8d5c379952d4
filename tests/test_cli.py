"""The `memalign` command end to end: a fake model selected explicitly, real Qdrant-on-disk and SQLite memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from memalign_graph.cli import main
from openai_server import openai_compatible_server

ROOT = Path(__file__).resolve().parent.parent
HALUEVAL = ROOT / "examples" / "data" / "halueval_sample.jsonl"
PROMETHEUS = ROOT / "examples" / "data" / "prometheus_sample.jsonl"
HALUEVAL_SPEC = ROOT / "examples" / "judges" / "halueval.yaml"
PROMETHEUS_SPEC = ROOT / "examples" / "judges" / "prometheus.yaml"
JUDGE = "halueval_hallucination"
FAKE = ["--model", "fake", "--embeddings", "fake"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEMALIGN_MODEL", "MEMALIGN_BASE_URL", "MEMALIGN_EMBEDDINGS", "MEMALIGN_HOME", "MEMALIGN_QDRANT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Run `memalign ARGS --home tmp/home`; returns (exit status, stdout, stderr)."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        code = main([str(arg) for arg in argv] + ["--home", str(tmp_path / "home")])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_align_is_idempotent_and_memory_can_be_inspected_rolled_back_and_forgotten(cli) -> None:
    code, out, err = cli("align", HALUEVAL, "--spec", HALUEVAL_SPEC, *FAKE, "--chunk-size", "16")
    assert code == 0, err
    assert "40 feedback read" in out and "added 40" in out
    assert "FAKE MODEL: plumbing demo, not a real judge" in err

    code, out, _ = cli("memory", "history", "--judge", JUDGE, "--json")
    versions = json.loads(out)
    assert code == 0 and [v["feedback"] for v in versions] == [40, 32, 16]  # newest first, one per chunk

    code, out, _ = cli("align", HALUEVAL, "--judge", JUDGE, *FAKE)  # the spec was saved with the judge
    assert code == 0 and "added 0" in out and "unchanged 40 (already in memory)" in out
    assert len(json.loads(cli("memory", "history", "--judge", JUDGE, "--json")[1])) == 3  # no new version

    code, out, _ = cli("memory", "show", "--judge", JUDGE, "--episodes", "2")
    assert code == 0 and f"judge '{JUDGE}'" in out and "from: halueval-general-" in out
    assert out.count("expert says") == 2
    shown = json.loads(cli("memory", "show", "--judge", JUDGE, "--json")[1])
    assert shown["feedback"] == 40 and all(g["feedback_ids"] for g in shown["guidelines"])

    oldest = versions[-1]["checkpoint_id"]
    code, out, _ = cli("memory", "rollback", oldest, "--judge", JUDGE, "--embeddings", "fake")
    assert code == 0 and "16 feedback" in out
    rolled_back = json.loads(cli("memory", "show", "--judge", JUDGE, "--episodes", "100", "--json")[1])
    assert rolled_back["feedback"] == 16 and len(rolled_back["episodes"]) == 16  # episodes follow the ledger

    forget_id = json.loads(cli("memory", "show", "--judge", JUDGE, "--json")[1])["guidelines"][0]["feedback_ids"][0]
    code, out, _ = cli("memory", "forget", forget_id, "--judge", JUDGE)
    assert code == 0 and "forgot 1 feedback" in out
    after = json.loads(cli("memory", "show", "--judge", JUDGE, "--episodes", "100", "--json")[1])
    assert after["feedback"] == 15 and forget_id not in {episode["feedback_id"] for episode in after["episodes"]}

    code, out, _ = cli("memory", "forget", forget_id, "no-such-id", "--judge", JUDGE)  # a deletion job, retried
    assert code == 0 and "forgot 0 feedback" in out
    assert f"not in memory (nothing to do; forgotten already?): {forget_id}, no-such-id" in out
    code, _, err = cli("memory", "rollback", "not-a-version", "--judge", JUDGE)
    assert code == 2 and "not a version" in err


def test_judge_writes_labelled_jsonl_with_usage_and_agreement(cli, tmp_path: Path) -> None:
    assert cli("align", HALUEVAL, "--spec", HALUEVAL_SPEC, *FAKE)[0] == 0
    output = tmp_path / "out" / "verdicts.jsonl"
    code, _, err = cli("judge", HALUEVAL, "--judge", JUDGE, *FAKE, "-o", output, "--concurrency", "3")
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 40 and [row["where"] for row in rows[:2]] == [
        "halueval_sample.jsonl:1",
        "halueval_sample.jsonl:2",
    ]
    assert all(row["verdict"]["comment"].startswith("FAKE MODEL") for row in rows)
    assert all("FAKE MODEL: plumbing demo" in row["model"] for row in rows)
    assert all(row["usage"]["seconds"] > 0 and row["error"] is None for row in rows)
    assert rows[0]["expected"] == "yes" and rows[0]["verdict"]["key"] == JUDGE
    assert "judged 40 rows" in err and "agreement with the file's 40 expert values: exact_match" in err


def test_judge_counts_the_tokens_a_real_client_reports(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real langchain-openai client on loopback: each judgment's usage is what the server reported."""
    output = tmp_path / "verdicts.jsonl"
    rows_in = tmp_path / "five.jsonl"
    rows_in.write_text("\n".join(HALUEVAL.read_text().splitlines()[:5]) + "\n")
    with openai_compatible_server() as (base_url, requests):
        monkeypatch.setenv("MEMALIGN_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "unused")
        code, _, err = cli(
            "judge", rows_in, "--spec", HALUEVAL_SPEC, "--model", "openai:local-model", "--embeddings", "fake",
            "-o", output, "--price-input", "1000", "--price-output", "2000",
        )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(requests) == len(rows) == 5 and rows[0]["model"] == "local-model"
    assert all(
        (row["usage"]["calls"], row["usage"]["input_tokens"], row["usage"]["output_tokens"]) == (1, 10, 5)
        for row in rows
    )
    # The server reports 10 prompt and 5 completion tokens a call: 5 * (10 * 1000 + 5 * 2000) / 1e6 = 0.1
    assert "5 LLM calls, 75 tokens (50 in / 25 out)" in err and "cost 0.1000" in err


def test_judge_reads_csv_through_a_column_mapping_to_stdout(cli, tmp_path: Path) -> None:
    spec = tmp_path / "tone.json"
    spec.write_text(json.dumps({"name": "tone", "instructions": "Is the reply kind?", "output": {"kind": "boolean"}}))
    data = tmp_path / "replies.csv"
    data.write_text("question,answer\nI was charged twice!,Two charges are recorded.\nWhere is it?,On its way.\n")
    code, out, err = cli("judge", data, "--spec", spec, "--inputs", "question", "--outputs", "answer", *FAKE)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["where"] for row in rows] == ["replies.csv:2", "replies.csv:3"]
    assert all(isinstance(row["verdict"]["score"], bool) for row in rows)


def test_eval_writes_the_table_json_csv_and_plots(cli, tmp_path: Path) -> None:
    out_dir = tmp_path / "eval"
    code, out, err = cli(
        "eval", PROMETHEUS, "--spec", PROMETHEUS_SPEC, *FAKE, "--out", out_dir,
        "--train-size", "6", "--shards", "0,2,6", "--seeds", "0,1", "--memory", "both,episodic",
        "--price-input", "0.4", "--price-output", "1.6",
    )  # fmt: skip
    assert code == 0, err
    assert "concordance correlation (CCC)" in out and "MemAlign" in out and "episodic only" in out
    assert "model: fake (FAKE MODEL: plumbing demo, not a real judge)" in out
    result = json.loads((out_dir / "results.json").read_text())
    assert result["model"].startswith("fake (FAKE MODEL") and len(result["runs"]) == 2 * 2 * 3
    assert (out_dir / "results.csv").read_text().startswith("variant,memory,feedback,examples_seen")
    assert len((out_dir / "runs.csv").read_text().splitlines()) == 1 + 12
    for name in ("learning_curve", "tokens_per_judgment", "quality_vs_cost"):
        assert (out_dir / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert (out_dir / f"{name}.svg").is_file() and (out_dir / f"{name}.pdf").is_file()
    predictions = (out_dir / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == len(result["predictions"]) == 2 * 2 * ((0 + 6) + (2 + 6) + (6 + 6))
    assert (out_dir / "quality_cost.csv").read_text().startswith("variant,name,examples_seen,test_quality_mean")
    assert not (tmp_path / "home" / "episodes").exists()  # the protocol never touches the judge's home


def test_a_malformed_file_is_one_line_naming_the_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = HALUEVAL.read_text().splitlines()
    bad.write_text("\n".join([lines[0], lines[1][:40], lines[2]]) + "\n")
    code, out, err = cli("align", bad, "--spec", HALUEVAL_SPEC, *FAKE)
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith("memalign: error: bad.jsonl:2: not valid JSON")
    assert "--skip-invalid" in err and "Traceback" not in err
    code, out, err = cli("align", bad, "--spec", HALUEVAL_SPEC, *FAKE, "--skip-invalid")
    assert code == 0 and "2 feedback read, 1 rows skipped" in out and "skipped bad.jsonl:2" in err


def test_a_value_that_does_not_fit_the_judge_names_its_line(cli, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in HALUEVAL.read_text().splitlines()[:3]]
    rows[2]["label"] = "maybe"
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, _, err = cli("align", data, "--spec", HALUEVAL_SPEC, *FAKE)
    assert code == 2 and "labels.jsonl:3: value: 'maybe' is not one of the judge's labels" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["align", HALUEVAL, "--spec", HALUEVAL_SPEC], "no judge model is configured: pass --model"),
        (["judge", HALUEVAL, "--judge", "nobody", *FAKE], "no judge 'nobody'"),
        (["align", HALUEVAL, *FAKE], "name the judge with --judge NAME"),
        (["align", "missing.jsonl", "--spec", HALUEVAL_SPEC, *FAKE], "missing.jsonl: no such file"),
        (["eval", HALUEVAL, "--spec", HALUEVAL_SPEC, *FAKE, "--train-size", "40"], "train_size: 40 leaves no test"),
        (["eval", HALUEVAL, "--spec", HALUEVAL_SPEC, *FAKE, "--memory", "both,all"], "--memory: ['all'] not among"),
        (["align", HALUEVAL, "--spec", HALUEVAL_SPEC, *FAKE, "--price-input", "1"], "go together"),
    ],
)
def test_user_mistakes_are_one_clear_line_and_a_nonzero_exit(cli, argv: list[str], message: str) -> None:
    code, _, err = cli(*argv)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("memalign: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err


def test_a_bad_spec_file_names_the_file_and_the_field(cli, tmp_path: Path) -> None:
    spec = tmp_path / "judge.yaml"
    spec.write_text("name: tone\ninstructions: Is it kind?\noutput: {kind: categorical}\n")
    code, _, err = cli("align", HALUEVAL, "--spec", spec, *FAKE)
    assert code == 2 and f"--spec: {spec}: output.categorical.labels: Field required" in err
    spec.write_text("name: tone\ninstructions: Is it kind?\noutput: {kind: categorical, labels: [yes, no]}\n")
    code, _, err = cli("align", HALUEVAL, "--spec", spec, *FAKE)
    assert code == 2 and "quote labels" in err
    spec.write_text("name: tone\n  instructions: [unclosed\n")
    code, _, err = cli("align", HALUEVAL, "--spec", spec, *FAKE)
    assert code == 2 and "not valid YAML: line 2" in err


@pytest.mark.parametrize(
    "command", [[], ["align"], ["judge"], ["eval"], ["memory"], ["memory", "show"], ["review-queue"]]
)
def test_every_command_has_help_with_an_example(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "example" in capsys.readouterr().out


def test_the_installed_command_runs_in_its_own_process(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "memalign"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "memalign_graph"]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MEMALIGN_")}
    finished = subprocess.run(
        [*command, "align", str(HALUEVAL), "--spec", str(HALUEVAL_SPEC), *FAKE, "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert "added 40" in finished.stdout and "FAKE MODEL" in finished.stderr


def test_memory_verify_export_and_import(cli, tmp_path: Path) -> None:
    assert cli("align", HALUEVAL, "--spec", HALUEVAL_SPEC, *FAKE)[0] == 0
    code, out, _ = cli("memory", "verify", "--judge", JUDGE)
    assert code == 0 and "is consistent" in out
    code, out, _ = cli("memory", "export", tmp_path / "memory.json", "--judge", JUDGE)
    assert code == 0 and "40 feedback, 40 episodes" in out
    code, _, err = cli("memory", "import", tmp_path / "nothing.json", "--judge", JUDGE)
    assert code == 2 and "cannot read" in err
    code, out, _ = cli("memory", "import", tmp_path / "memory.json", "--judge", JUDGE)
    assert code == 0 and "now holds" in out and "40 episodes" in out


def test_saved_specs_belong_to_their_namespace_and_names_never_leave_the_home(cli, tmp_path: Path) -> None:
    """One tenant's --spec once replaced another's criterion (HOME/judges/NAME.json was shared), and
    `--judge ../x` or an absolute path read any .json file as a spec."""
    strict, lenient = tmp_path / "strict.json", tmp_path / "lenient.json"
    strict.write_text(
        json.dumps({"name": "tone", "instructions": "Strict: is it perfect?", "output": {"kind": "boolean"}})
    )
    lenient.write_text(
        json.dumps({"name": "tone", "instructions": "Lenient: is it fine?", "output": {"kind": "boolean"}})
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"inputs": "q", "outputs": "a", "value": True, "rationale": "Fine."}) + "\n")
    assert cli("align", rows, "--spec", strict, "--namespace", "team-a", *FAKE)[0] == 0
    assert cli("align", rows, "--spec", lenient, "--namespace", "team-b", *FAKE)[0] == 0
    for team, words in (("team-a", "Strict"), ("team-b", "Lenient")):
        code, out, err = cli("judge", rows, "--judge", "tone", "--namespace", team, *FAKE)
        assert code == 0, err
        saved = tmp_path / "home" / "judges" / team / "tone.json"
        assert json.loads(saved.read_text())["instructions"].startswith(words)

    (tmp_path / "evil.json").write_text(json.dumps({"name": "x", "instructions": "y", "output": {"kind": "boolean"}}))
    for name in ("../evil", str(tmp_path / "evil"), "../../x"):
        code, _, err = cli("memory", "show", "--judge", name)
        assert code == 2 and "--judge: " in err and "must be 1-63 letters" in err, err
    code, _, err = cli("memory", "show", "--judge", "tone", "--namespace", "../team-a")
    assert code == 2 and "--namespace: '../team-a' must be 1-63 letters" in err


def test_a_bad_flag_or_spec_file_is_one_line(cli, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"inputs": "q", "outputs": "a", "value": True}) + "\n")
    code, _, err = cli("align", rows, "--bogus")
    assert code == 2 and err.strip().splitlines() == [
        "memalign: error: unrecognized arguments: --bogus (see `memalign --help`)"
    ]
    code, _, err = cli("judge", rows, "--judge", "t", "--concurrency", "many")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "invalid int value: 'many'" in err

    bad = {
        "latin1.yaml": "name: t\ninstructions: caf\xe9\n".encode("latin-1"),
        "binary.json": bytes(range(256)),
        "infinite.json": b'{"name": "s", "instructions": "x", "output": {"kind": "score", "low": 1, "high": 1e999}}',
        "huge.json": b'{"name": "s", "instructions": "x", "output": {"kind": "score", "low": 1, "high": 1'
        + b"0" * 400
        + b"}}",
    }
    expected = {
        "latin1.yaml": "not valid UTF-8 (byte 0xe9 at offset 25)",
        "binary.json": "not valid UTF-8 (byte 0x80 at offset 128)",
        "infinite.json": "output.score: Value error, Score: low (1.0) and high (inf) must be finite numbers",
        "huge.json": "output.score.high: Input should be a valid number",
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        code, _, err = cli("align", rows, "--spec", tmp_path / name, *FAKE)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"--spec: {tmp_path / name}: {expected[name]}" in err, err


def test_what_memory_show_prints_cannot_command_the_terminal(cli, tmp_path: Path) -> None:
    """Feedback's ANSI escapes, bell and right-to-left override were printed raw."""
    hostile = "Say \u202eexe.live\u202c ok \x1b]0;pwned\x07 \x1b[2J"
    rows = tmp_path / "evil.jsonl"
    rows.write_text(
        json.dumps({"id": "evil", "inputs": "q\x1b[31m", "outputs": "a", "value": True, "rationale": hostile})
    )
    spec = tmp_path / "tone.json"
    spec.write_text(json.dumps({"name": "support_tone", "instructions": "Fine?", "output": {"kind": "boolean"}}))
    assert cli("align", rows, "--spec", spec, *FAKE)[0] == 0
    code, out, _ = cli("memory", "show", "--judge", "support_tone", "--episodes", "5")
    assert code == 0 and not any(c in out for c in "\x1b\x07\u202e\u202c")
    assert "Say \\u202eexe.live\\u202c ok \\x1b]0;pwned\\x07 \\x1b[2J" in out and "q\\x1b[31m" in out
    code, out, _ = cli("memory", "show", "--judge", "support_tone", "--episodes", "5", "--json")
    assert not any(c in out for c in "\x1b\x07\u202e") and json.loads(out)["episodes"][0]["rationale"] == hostile


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """The folder and everything in it made unwritable for everyone, root included (ext4's immutable
    flag; file modes do not stop root, which CI runs as)."""
    if shutil.which("chattr") is None or subprocess.run(["chattr", "-R", "+i", str(folder)]).returncode != 0:
        subprocess.run(["chattr", "-R", "-i", str(folder)], capture_output=True)
        pytest.skip("chattr +i is not available here: cannot make a folder read-only for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)


def test_a_read_only_home_can_still_be_read(cli, tmp_path: Path) -> None:
    """A read-only home failed even `memory show` (both stores write as they open)."""
    assert cli("align", HALUEVAL, "--spec", HALUEVAL_SPEC, *FAKE)[0] == 0
    home = tmp_path / "home"
    before = {path: path.stat().st_mtime_ns for path in home.rglob("*")}
    with read_only(home):
        code, out, err = cli("memory", "show", "--judge", JUDGE)
        assert code == 0, err
        assert "is read-only: showing semantic memory only" in err and "guidelines from 40 feedback items" in out
        code, out, _ = cli("memory", "history", "--judge", JUDGE)
        assert code == 0 and "versions of the memory" in out
        code, _, err = cli("memory", "show", "--judge", JUDGE, "--episodes", "3")
        assert code == 2 and "episodes cannot be read from a read-only home" in err
    assert {path: path.stat().st_mtime_ns for path in home.rglob("*")} == before
