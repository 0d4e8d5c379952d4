"""Smoke test of the benchmark code: every scenario in a tiny configuration (seconds), no timing asserts.

The benchmarks themselves run with `python -m benchmarks`; this only keeps their code working as the
package changes, and checks that the rows carry the fields the README table is made of.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.__main__ import SCENARIOS  # noqa: E402
from benchmarks.context import PRESETS, RunContext  # noqa: E402
from benchmarks.fakes import consolidate_by_topic  # noqa: E402
from benchmarks.report import ScenarioResult, machine_info, render_markdown, write_json  # noqa: E402
from benchmarks.workload import feedback_item, topic_rule  # noqa: E402

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def results() -> dict[str, ScenarioResult]:
    context = RunContext.create(TINY)
    try:
        return {name: scenario(context) for name, scenario in SCENARIOS.items()}
    finally:
        context.close()


def _complete(result: ScenarioResult, optional: set[str] = frozenset()) -> list[dict[str, Any]]:
    assert result.rows, f"{result.name} produced no rows"
    for row in result.rows:
        missing = [key for key, _ in result.columns if key not in row and key not in optional]
        assert not missing, f"{result.name} row lacks {missing}: {row}"
    return result.rows


def test_alignment_rows_count_calls_and_texts(results: dict[str, ScenarioResult]) -> None:
    rows = _complete(results["alignment"])
    for row in rows:
        assert row["distill_calls"] >= 1 and 1 <= row["distill_in_flight"] <= row["max_concurrency"]
        assert row["episode_texts_embedded"] == row["n"] and row["guidelines"] >= 1
        assert row["wall_s"] > 0 and (row["round_trips"] is None) == (row["latency_ms"] == 0)
    assert any(row["memory_before"] > 0 for row in rows)  # the row that aligns into a judge with memory
    assert [target.met in (True, False) for target in results["alignment"].targets] == [True]


def test_incremental_rounds_embed_only_their_records(results: dict[str, ScenarioResult]) -> None:
    rows = _complete(results["incremental"])
    assert [row["round"] for row in rows] == list(range(1, TINY.incremental_rounds + 1))
    for row in rows:
        assert row["episode_texts_embedded"] == TINY.incremental_per_round
        assert row["points_upserted"] == TINY.incremental_per_round


def test_prompt_tokens_follow_feedback_and_respect_the_budget(results: dict[str, ScenarioResult]) -> None:
    rows = _complete(results["prompt_tokens"])
    assert [row["feedback_seen"] for row in rows] == list(TINY.token_steps)
    assert rows[0]["guidelines_stored"] == 0 and rows[-1]["guidelines_stored"] > 0
    for row in rows:
        assert 0 < row["prompt_tokens_p50"] <= row["prompt_tokens_max"]
        assert row["block_tokens_max"] <= row["budget"]


def test_batch_throughput_rows(results: dict[str, ScenarioResult]) -> None:
    rows = _complete(results["batch_throughput"])
    assert [(row["method"], row["concurrency"]) for row in rows] == list(TINY.batch_runs)
    for row in rows:
        assert row["errors"] == 0 and row["n"] == TINY.batch_judgments
        assert 1 <= row["in_flight"] <= row["concurrency"] and row["ideal_s"] > 0


def test_judge_overhead_rows(results: dict[str, ScenarioResult]) -> None:
    rows = _complete(results["judge_overhead"])
    assert [row["episodes"] for row in rows] == list(TINY.episode_counts)
    for row in rows:
        assert row["p50_ms"] > 0 and row["search_ms"] > 0 and row["model_ms"] >= 0
        assert row["p50_ms"] <= row["p95_ms"] and row["query_ms"] > 0


def test_round_trips_count_the_calls_each_operation_waits_for(results: dict[str, ScenarioResult]) -> None:
    empty, aligned, unchecked, warm, ours, theirs = _complete(results["round_trips"])
    assert (empty["llm_calls"], empty["embedding_calls"]) == (1, 0)  # nothing to retrieve, nothing embedded
    assert (warm["llm_calls"], warm["embedding_calls"]) == (1, 1)
    assert aligned["embedding_calls"] == unchecked["embedding_calls"] == 2  # the episodes, then the drafts
    assert aligned["llm_calls"] > unchecked["llm_calls"]  # the evidence check: a call per distillation batch
    assert 0 < ours["completion_tokens"] <= theirs["completion_tokens"]


def test_scale_measures_local_mode_and_skips_the_server(results: dict[str, ScenarioResult]) -> None:
    local, server = results["scale"].rows
    assert local["points"] == TINY.scale_points and local["reopen_s"] > 0 and local["disk_mb"] > 0
    assert local["insert_rate"] > 0 and local["reopen_rss_mb"] > 0
    assert server["status"].startswith("skipped")


def test_report_renders_markdown_and_json(results: dict[str, ScenarioResult], tmp_path: Path) -> None:
    info = machine_info()
    text = render_markdown(list(results.values()), info, command="tiny")
    assert "| N | feedback in memory before | LLM ms |" in text and f"{info['cores']} cores" in text
    summary = text.split("### Where the targets stand (this run)")[1].split("\n### ")[0]
    targets = [target for result in results.values() for target in result.targets]
    assert targets and summary.count("\n| ") == len(targets) + 1  # the header, then a line per target
    write_json(tmp_path / "results.json", list(results.values()), info, command="tiny")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [scenario["name"] for scenario in saved["scenarios"]] == list(SCENARIOS)


def test_minilm_queries_is_skipped_without_the_local_model(results: dict[str, ScenarioResult]) -> None:
    assert results["minilm_queries"].rows == [] and "Skipped" in results["minilm_queries"].notes[0]


def test_fake_consolidation_folds_a_topic_into_its_rule() -> None:
    rule = topic_rule(0)
    prompt = f"- [gl-aaa] {rule}\n- [gl-bbb] {rule} Experts insist on this without exception.\n- [gl-ccc] Note 1: x y."
    assert consolidate_by_topic(prompt) == {"guidelines": [{"text": rule, "replaces": ["gl-aaa", "gl-bbb"]}]}
    assert feedback_item(3).id == "fb-000003" and feedback_item(3) == feedback_item(3)


def test_startup_times_fresh_processes(results: dict[str, ScenarioResult]) -> None:
    rows = {row["what"]: row for row in results["startup"].rows}
    assert {"import memalign_graph", "memalign --help", "memalign align, nothing new"} <= set(rows)
    assert all(row["median_s"] > 0 for row in rows.values())


def test_edge_rows_put_both_local_engines_in_one_table(results: dict[str, ScenarioResult]) -> None:
    optional = {"queried_rss_mb", "search_p95_ms", "index_s", "recall_at_5", "recall_points"}
    local, edge = _complete(results["edge"], optional)
    assert local["backend"].startswith("Qdrant local mode") and edge["backend"].startswith("Qdrant embedded")
    assert edge["points"] == TINY.edge_points and edge["reopen_s"] > 0 and edge["search_ms"] > 0
    assert [target.met for target in results["edge"].targets][-1] is None  # no MiniLM in the tiny preset


def test_vs_mlflow_rows_give_each_ratio(results: dict[str, ScenarioResult]) -> None:
    pytest.importorskip("mlflow")
    rows = _complete(results["vs-mlflow"])
    assert [row["unit"] for row in rows] == ["s"] * 5 + ["tokens", "MB"]
    assert all(row["mlflow"] > 0 and row["ours"] > 0 and row["ratio"] > 0 for row in rows)
    assert all(row["ours_no_check"] > 0 for row in rows if row["unit"] == "s")


def test_a_run_goes_into_the_readme_between_its_markers(tmp_path: Path) -> None:
    from benchmarks.__main__ import README_END, README_START, splice_into_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n## Performance\n{README_START}\nold\n{README_END}\n\nWhat is left.\n")
    splice_into_readme(readme, "`cmd`\n\n### Where the targets stand (this run)\n\n| a |\n")
    assert readme.read_text() == (
        f"# Title\n\n## Performance\n{README_START}\n`cmd`\n\n#### Where the targets stand (this run)\n\n| a |\n"
        f"{README_END}\n\nWhat is left.\n"
    )
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="no results markers"):
        splice_into_readme(readme, "x")
