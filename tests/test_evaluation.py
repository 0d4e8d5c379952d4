"""The evaluation protocol: its split and shards, ablations, accounting, no-verdict counting, results and plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from fakes import MeteredChatModel
from memalign_graph import Categorical, JudgeSpec, QdrantEpisodicStore, Score
from memalign_graph.accounting import Prices
from memalign_graph.evaluation.ablations import Variant, open_variant_judges, variant_feedback
from memalign_graph.evaluation.datasets import load_examples
from memalign_graph.evaluation.plots import plot_learning_curves, plot_quality_vs_cost, plot_tokens_per_judgment
from memalign_graph.evaluation.protocol import EvaluationError, ProtocolSettings, run_protocol, split_train_test
from memalign_graph.evaluation.results import (
    confusion_matrices_text,
    results_table,
    write_json,
    write_runs_csv,
    write_summary_csv,
)
from memalign_graph.fake_model import FakeEmbeddings

DATA = Path(__file__).resolve().parent.parent / "examples" / "data"
HALUEVAL = JudgeSpec(name="halu", instructions="Does it hallucinate?", output=Categorical(labels=("yes", "no")))
RUBRIC = JudgeSpec(
    name="rubric", instructions="Score it.", output=Score(low=1, high=5), fields=("inputs", "outputs", "expectations")
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def halueval():
    return load_examples(DATA / "halueval_sample.jsonl", HALUEVAL).examples


def test_split_is_seeded_disjoint_and_sized(halueval) -> None:
    train, test = split_train_test(halueval, train_size=10, seed=3)
    again, _ = split_train_test(halueval, train_size=10, seed=3)
    other, _ = split_train_test(halueval, train_size=10, seed=4)
    assert [e.id for e in train] == [e.id for e in again] != [e.id for e in other]
    assert len(train) == 10 and len(test) == 30 and not {e.id for e in train} & {e.id for e in test}
    assert len(split_train_test(halueval, train_size=10, seed=3, test_size=5)[1]) == 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ProtocolSettings(train_size=40), "train_size: 40 leaves no test examples out of 40"),
        (ProtocolSettings(train_size=10, shards=(0, 5, 20)), "shards: 20 examples seen is more than train_size 10"),
        (ProtocolSettings(train_size=10, shards=(5, 2)), "shards: .* increasing order"),
        (ProtocolSettings(train_size=10, shards=(0, 5), seeds=()), "seeds:"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_name(settings: ProtocolSettings, message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        settings.check(40)


def test_default_settings_fit_the_data() -> None:
    assert ProtocolSettings.fitting(320).train_size == 50 and ProtocolSettings.fitting(320).shards == (
        0,
        2,
        5,
        10,
        20,
        50,
    )
    small = ProtocolSettings.fitting(12)
    assert small.train_size == 6 and small.shards == (0, 2, 5, 6)
    small.check(12)
    assert ProtocolSettings.fitting(40, train_size=10, shards=None).shards == (0, 2, 5, 10)


def test_judgment_count_covers_seen_training_examples_and_the_test_set() -> None:
    settings = ProtocolSettings(train_size=10, shards=(0, 2, 10), seeds=(0, 1), test_size=5)
    assert settings.judgments(40) == 2 * ((0 + 5) + (2 + 5) + (10 + 5))


def test_protocol_learning_curves_with_ablations_and_accounting(halueval, tmp_path: Path) -> None:
    variants = (Variant(), Variant(memory="episodic"), Variant(memory="semantic", feedback="rationale"))
    settings = ProtocolSettings(
        train_size=10,
        shards=(0, 2, 10),
        seeds=(0, 1),
        variants=variants,
        test_size=6,
        prices=Prices(input_per_million=1.0, output_per_million=2.0),
    )
    progress: list[int] = []
    result = run_protocol(
        HALUEVAL,
        halueval,
        model=MeteredChatModel(),
        embeddings=FakeEmbeddings(),
        memory_dir=tmp_path / "memory",
        settings=settings,
        on_progress=progress.append,
    )
    assert sum(progress) == settings.judgments(40) + 2 * 3 * 10
    assert len(result.runs) == 2 * 3 * 3 and len(result.summary) == 3 * 3
    runs = {(r["seed"], r["variant"], r["examples_seen"]): r for r in result.runs}

    start = runs[(0, "both-both", 0)]
    assert start["train"] is None and start["test"]["n"] == 6 and start["alignment"]["usage"]["calls"] == 0
    assert start["judging"]["stages"]["judge"]["calls"] == 6  # one call per judgment, nothing retried

    full = runs[(0, "both-both", 10)]
    assert full["train"]["n"] == 10 and full["feedback_given"] == 10 and full["guidelines"] > 0
    # the 8 new feedback items fit one batch: one distillation call, one evidence check of its drafts
    assert full["alignment"]["stages"]["distill"]["calls"] == 2
    assert full["alignment"]["cumulative"]["calls"] == 4
    per_judgment = full["judging"]["per_judgment"]
    assert per_judgment["calls"] == 1 and per_judgment["input_tokens"] > 0 and per_judgment["seconds"] > 0
    usage = full["judging"]["usage"]
    assert full["cost"]["judging"] == pytest.approx((usage["input_tokens"] + 2 * usage["output_tokens"]) / 1e6)

    episodic = runs[(0, "episodic-both", 10)]
    assert episodic["guidelines"] == 0 and episodic["alignment"]["cumulative"]["calls"] == 0
    # The fake judge copies the nearest episode's expert verdict: a seen example is its own nearest.
    assert episodic["train"]["quality"] == 1.0

    semantic = runs[(0, "semantic-rationale", 10)]
    with_rationale = sum(1 for e in split_train_test(halueval, train_size=10, seed=0)[0] if e.rationale)
    assert semantic["feedback_given"] == with_rationale < 10

    row = next(r for r in result.summary if r["variant"] == "both-both" and r["examples_seen"] == 10)
    assert row["seeds"] == 2 and row["metric"] == "exact_match" and row["test_quality_std"] is not None
    assert row["cost_per_judgment_mean"] > 0 and row["alignment_tokens_mean"] > 0

    table = results_table(result)
    assert "MemAlign" in table and "episodic only" in table and "semantic only, feedback only" in table
    assert "[bootstrap 95% interval over examples and seeds]" in table and "cost/judgment" in table
    assert "test kappa" in table and "references (test): zero-shot (empty memory)" in table
    assert "confusion matrix, MemAlign, 10 examples seen" in confusion_matrices_text(result)

    assert json.loads(write_json(result, tmp_path / "results.json").read_text())["summary"][0]["seeds"] == 2
    with write_summary_csv(result, tmp_path / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 9
    with write_runs_csv(result, tmp_path / "runs.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 18

    for plot in (plot_learning_curves, plot_tokens_per_judgment, plot_quality_vs_cost):
        png, svg, pdf = plot(result, tmp_path / plot.__name__)
        assert png.read_bytes().startswith(PNG_SIGNATURE) and len(png.read_bytes()) > 5_000
        assert svg.read_text().lstrip().startswith("<?xml") and pdf.read_bytes().startswith(b"%PDF")
        assert _png_size(png)[0] >= 7 * 200  # 200 dpi: at least 7 inches wide


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def test_results_carry_predictions_provenance_kappa_intervals_and_references(halueval, tmp_path: Path) -> None:
    settings = ProtocolSettings(train_size=10, shards=(0, 4, 10), seeds=(0, 1), test_size=8, bootstrap=500)
    result = run_protocol(
        HALUEVAL,
        halueval,
        model=MeteredChatModel(),
        embeddings=FakeEmbeddings(),
        memory_dir=tmp_path / "memory",
        settings=settings,
        source=str(DATA / "halueval_sample.jsonl"),
    )
    # every judgment, named: 2 seeds x (0 + 8, 4 + 8, 10 + 8) judgments
    assert len(result.predictions) == 2 * (8 + 12 + 18)
    row = next(p for p in result.predictions if p["split"] == "train" and p["examples_seen"] == 10)
    assert set(row) >= {"id", "seed", "variant", "shard", "split", "expected", "verdict", "rationale"}
    assert row["shard"] == 2 and row["guideline_ids"] is not None and row["episode_ids"]
    assert row["in_memory"] == [row["id"]] and row["own_record_shown"]  # train: its own record, as measured
    test_rows = [p for p in result.predictions if p["split"] == "test"]
    assert not any(p["own_record_shown"] for p in test_rows)  # test: never shown its own record
    assert {p["rationale"].split(":")[0] for p in test_rows} == {"FAKE MODEL"}

    provenance = result.provenance
    assert provenance["library"] == "memalign-graph" and provenance["library_version"]
    assert provenance["embedding_model"].startswith("fake (FAKE EMBEDDINGS")
    assert provenance["data_file"] == "halueval_sample.jsonl" and len(provenance["data_sha256"]) == 64
    assert provenance["started_at"].endswith("+00:00") and "/" not in provenance["data_file"]

    summary = next(r for r in result.summary if r["examples_seen"] == 10)
    assert summary["test_kappa_mean"] is not None
    for name in ("quality", "kappa"):
        low, mean, high = (summary[f"test_{name}_{part}"] for part in ("low", "mean", "high"))
        assert low <= mean <= high and -1.0 <= low and high <= 1.0
    assert 0.0 <= summary["train_quality_low"] <= summary["train_quality_high"] <= 1.0

    zero = next(r for r in result.summary if r["examples_seen"] == 0)
    assert result.references["zero_shot"]["mean"] == zero["test_quality_mean"]
    majority = result.references["majority_class"]
    assert [entry["seed"] for entry in majority["per_seed"]] == [0, 1] and 0 <= majority["quality_mean"] <= 1

    regressions = next(r for r in result.runs if r["examples_seen"] == 10)["regressions"]
    assert regressions["checked"] == 4  # the examples seen at the previous shard, judged again
    assert result.runs[0]["regressions"] is None


def test_judgments_without_a_verdict_are_counted_never_guessed(halueval, tmp_path: Path) -> None:
    _, test = split_train_test(halueval, train_size=10, seed=0, test_size=6)
    word = test[0].outputs.split()[0]
    refused = sum(1 for example in test if word in json.dumps(example.example(), ensure_ascii=False))
    result = run_protocol(
        HALUEVAL,
        halueval,
        model=MeteredChatModel(refuse=word),
        embeddings=FakeEmbeddings(),
        memory_dir=tmp_path,
        settings=ProtocolSettings(train_size=10, shards=(0,), seeds=(0,), test_size=6),
    )
    report = result.runs[0]["test"]
    assert 1 <= report["no_verdict"] == refused < 6
    assert report["answered"] == 6 - refused
    assert report["confusion_matrix"][test[0].value]["(no verdict)"] >= 1
    errors = result.runs[0]["no_verdict_errors"]
    assert len(errors) == 1 and sum(errors.values()) == refused
    assert next(iter(errors)).startswith("VerdictParseError: Judge 'halu' gave no valid verdict in 3 attempts")


def test_a_model_that_never_answers_stops_the_protocol(halueval, tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="every judgment failed; the first error: VerdictParseError"):
        run_protocol(
            HALUEVAL,
            halueval,
            model=MeteredChatModel(refuse="<outputs>"),
            embeddings=FakeEmbeddings(),
            memory_dir=tmp_path,
            settings=ProtocolSettings(train_size=10, shards=(0,), seeds=(0,), test_size=2),
        )


def test_scores_are_measured_by_concordance(tmp_path: Path) -> None:
    examples = load_examples(DATA / "prometheus_sample.jsonl", RUBRIC).examples
    result = run_protocol(
        RUBRIC,
        examples,
        model=MeteredChatModel(),
        embeddings=FakeEmbeddings(),
        memory_dir=tmp_path,
        settings=ProtocolSettings(train_size=6, shards=(0, 6), seeds=(0,)),
    )
    assert result.metric == "concordance correlation (CCC)"
    test = result.runs[-1]["test"]
    assert test["metric"] == "ccc" and {"pearson", "mae", "ccc"} <= set(test)
    row = result.summary[-1]
    assert "test_mae_mean" in row and row["test_quality_std"] is None  # one seed: no spread ...
    assert row["test_quality_low"] is not None  # ... but an interval over its examples
    assert "test_kappa_mean" not in row and "test_pearson_low" in row


def test_variants_set_up_the_memories_they_name(halueval) -> None:
    store = QdrantEpisodicStore()
    checkpointer = InMemorySaver()
    shared = {"episodic_store": store, "checkpointer": checkpointer}
    feedback = [variant_feedback(example, Variant()) for example in halueval[:4]]
    with open_variant_judges(
        HALUEVAL, MeteredChatModel(), FakeEmbeddings(), Variant(memory="episodic"), namespace="ep", **shared
    ) as judges:
        assert judges.aligner.alignment_context.distill is False and judges.judge is not judges.aligner
        judges.aligner.align(feedback)
        assert judges.judge.guidelines() == [] and store.count("halu", "ep") == 4
        verdict = judges.judge.judge(**halueval[0].example())
        assert verdict["metadata"]["episode_ids"] and not verdict["metadata"]["guideline_ids"]
    with open_variant_judges(
        HALUEVAL, MeteredChatModel(), FakeEmbeddings(), Variant(memory="semantic"), namespace="se", **shared
    ) as judges:
        judges.aligner.align(feedback)
        verdict = judges.judge.judge(**halueval[0].example())
        assert verdict["metadata"]["guideline_ids"] and not verdict["metadata"]["episode_ids"]
    store.close()
    assert variant_feedback(halueval[0], Variant(feedback="label")).rationale is None
    assert variant_feedback(halueval[0], Variant(feedback="rationale")).value is None


def test_memory_left_by_an_earlier_run_is_refused(halueval, tmp_path: Path) -> None:
    settings = ProtocolSettings(train_size=10, shards=(0, 2), seeds=(0,), test_size=2)
    options = {
        "model": MeteredChatModel(),
        "embeddings": FakeEmbeddings(),
        "memory_dir": tmp_path,
        "settings": settings,
    }
    run_protocol(HALUEVAL, halueval, **options)
    with pytest.raises(EvaluationError, match="already holds memory; the protocol starts from empty memory"):
        run_protocol(HALUEVAL, halueval, **options)
