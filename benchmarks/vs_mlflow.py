"""Scenario `vs-mlflow`: MLflow's `MemAlignOptimizer` and memalign-graph side by side, against one loopback
OpenAI-compatible mock (`benchmarks/openai_mock.py`) with a fixed latency per request, interleaved runs,
medians. Runs only when `mlflow` (and `dspy`, which its optimizer needs) are installed.

Both sides get the same feedback (`benchmarks/workload.py`), reach the mock through their own clients
(MLflow: LiteLLM and DSPy; ours: `ChatOpenAI` and `OpenAIEmbeddings`) and get the same answers: one
guideline per distinct rationale in a distillation batch. MLflow reads feedback from traces in a SQLite
tracking store (logged before the clock starts). Ratio = memalign-graph / MLflow; below 1 is faster.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import JUDGE_NAME, feedback_batch, judge_spec, judged_example

COLUMNS = [
    ("case", "scenario"),
    ("n", "feedback"),
    ("latency_ms", "LLM ms"),
    ("mlflow", "MLflow"),
    ("ours", "memalign-graph"),
    ("ours_no_check", "memalign-graph, no evidence check"),
    ("ratio", "ratio"),
    ("ratio_no_check", "ratio, no evidence check"),
    ("unit", "unit"),
]
MLFLOW_MODEL = "openai:/mock-judge"
MLFLOW_EMBEDDINGS = "openai:/text-embedding-3-small"
INSTRUCTIONS = "Is the support bot's reply in {{ outputs }} appropriate for the customer's message in {{ inputs }}?"
_ENVIRONMENT = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "OPENAI_API_KEY": "unused",
}


def run(context: RunContext) -> ScenarioResult:
    result = ScenarioResult(name="vs-mlflow", title="Side by side with MLflow's MemAlignOptimizer", columns=COLUMNS)
    try:
        import dspy  # noqa: F401
        import mlflow  # noqa: F401
    except ImportError:
        result.rows.append({"case": "skipped: mlflow and dspy are not installed (pip install 'memalign-graph[test]')"})
        return result
    from benchmarks.openai_mock import openai_mock

    sizes = context.sizes
    os.environ.update(_ENVIRONMENT)
    with openai_mock(sizes.latency_s) as (url, traffic):
        side = _Sides(context, url)
        began = time.perf_counter()
        side.log_traces(sizes.vs_mlflow_n + sizes.vs_mlflow_added)
        logged_s = time.perf_counter() - began
        timings: dict[str, dict[str, list[float]]] = {}
        counts = side.warm_up()  # imports and first connections, on both sides, before any clock

        def timed(case: str, name: str, action: Callable[[], Any]) -> Any:
            started = time.perf_counter()
            value = action()
            timings.setdefault(case, {}).setdefault(name, []).append(time.perf_counter() - started)
            return value

        tokens: dict[str, list[int]] = {"mlflow": [], "ours": []}
        for index in range(sizes.vs_mlflow_runs):
            order = ["mlflow", "ours", "ours_no_check"]
            if index % 2:
                order.reverse()  # interleaved: neither side always runs on a warmer machine
            for name in order:
                side.run_once(name, timed, tokens, traffic)
    rows = _rows(timings, tokens, sizes)
    rows.append(_rss_row(context, sizes))
    result.rows += rows
    for row in rows:
        if row.get("ratio") is not None:
            result.targets.append(
                Target(
                    f"{row['case']} (N={row['n']})",
                    "memalign-graph / MLflow below 1",
                    f"x{row['ratio']:.2f}"
                    + (
                        f" (no evidence check x{row['ratio_no_check']:.2f})"
                        if row.get("ratio_no_check") is not None
                        else ""
                    ),
                    row["ratio"] < 1,
                )
            )
    result.notes += [
        f"Mock: {url.rsplit(':', 1)[0]} loopback, {sizes.latency_s * 1000:.0f} ms per request (chat and embeddings), "
        "one write per response with TCP_NODELAY, base64 embeddings when asked. Medians of "
        f"{sizes.vs_mlflow_runs} interleaved runs; {sizes.vs_mlflow_n + sizes.vs_mlflow_added:,} MLflow traces with "
        f"feedback logged to a SQLite tracking store before the clock ({logged_s:.0f} s).",
        "memalign-graph: MemAlignJudge with ChatOpenAI and OpenAIEmbeddings on the mock, memory in a fresh "
        "folder per run (Qdrant local mode + SQLite). Its alignment makes one evidence-check call per "
        "distillation batch; the `no evidence check` column is AlignmentContext(check_evidence=False).",
        "Reload: MLflow registers the aligned judge and loads it with get_scorer, whose first call fetches "
        "every trace and re-embeds them; ours opens a new MemAlignJudge on the folder. RSS: each side aligns "
        f"{sizes.vs_mlflow_n:,} in a fresh Python process of its own (VmRSS after the alignment).",
        f"Guidelines after aligning {sizes.vs_mlflow_n:,}: MLflow {counts['mlflow']}, memalign-graph "
        f"{counts['ours']} (the same answers, one per distinct rationale in a batch; ours dedupes across batches "
        "and consolidates within its token budget).",
    ]
    return result


class _Sides:
    """Both systems, set up once per scenario run: MLflow's traces and judges, our judges' folders."""

    def __init__(self, context: RunContext, url: str) -> None:
        import dspy
        import mlflow

        self.context, self.url = context, url
        for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
            os.environ[name] = url
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)  # every call reaches the mock
        self.tracking_uri = f"sqlite:///{context.folder('mlflow') / 'mlflow.db'}"
        mlflow.set_tracking_uri(self.tracking_uri)
        self.experiment = mlflow.create_experiment(f"vs-mlflow-{time.time_ns()}")
        self.traces: list[Any] = []

    def warm_up(self) -> dict[str, int]:
        """One untimed alignment and judgment on each side; the guidelines each keeps after aligning N."""
        n = self.context.sizes.vs_mlflow_n
        aligned = mlflow_align(mlflow_judge(), self.traces[:n])
        aligned(**_example(0))
        with self.ours(True) as judge:
            judge.align(feedback_batch(0, n))
            judge.judge(**judged_example(0))
            return {"mlflow": len(aligned._semantic_memory), "ours": len(judge.guidelines())}

    def log_traces(self, count: int) -> None:
        self.traces = log_traces(self.experiment, count)

    def run_once(self, name: str, timed: Callable[..., Any], tokens: dict[str, list[int]], traffic: Any) -> None:
        sizes = self.context.sizes
        n, small, added = sizes.vs_mlflow_n, sizes.vs_mlflow_small, sizes.vs_mlflow_added
        if name == "mlflow":
            base = mlflow_judge()
            timed("align_small", name, lambda: mlflow_align(base, self.traces[:small]))
            aligned = timed("align", name, lambda: mlflow_align(base, self.traces[:n]))
            before = len(traffic.snapshot()["prompt_tokens"].get(("mock-judge", "mlflow_judgment"), []))
            for index in range(sizes.vs_mlflow_judgments):
                aligned(**_example(index))
            tokens["mlflow"] += traffic.snapshot()["prompt_tokens"][("mock-judge", "mlflow_judgment")][before:]
            timed("realign", name, lambda: mlflow_align(aligned, self.traces[: n + added]))
            scorer_name = f"{JUDGE_NAME}_{time.time_ns()}"
            aligned.register(name=scorer_name, experiment_id=self.experiment)
            timed("reload", name, lambda: mlflow_reload(scorer_name, self.experiment)(**_example(0)))
            timed("empty", name, lambda: base(**_example(1)))
            return
        check = name == "ours"
        feedback = feedback_batch(0, n + added)
        with self.ours(check) as judge:
            timed("align_small", name, lambda: judge.align(feedback[:small]))
        home = self.context.folder("ours")
        with self.ours(check, home) as judge:
            timed("align", name, lambda: judge.align(feedback[:n]))
            if check:
                before = len(traffic.snapshot()["prompt_tokens"].get(("ours-judge", "verdict"), []))
                for index in range(sizes.vs_mlflow_judgments):
                    judge.judge(**judged_example(index))
                tokens["ours"] += traffic.snapshot()["prompt_tokens"][("ours-judge", "verdict")][before:]
            timed("realign", name, lambda: judge.align(feedback))
        timed("reload", name, lambda: self.reload(home, check))
        with self.ours(check) as empty:
            timed("empty", name, lambda: empty.judge(**judged_example(1)))

    def ours(self, check: bool, home: Path | None = None) -> Any:
        return open_ours(self.url, home or self.context.folder("ours"), check)

    def reload(self, home: Path, check: bool) -> None:
        with self.ours(check, home) as judge:
            judge.judge(**judged_example(0))


def open_ours(url: str, home: Path, check: bool) -> Any:
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    from memalign_graph import AlignmentContext, MemAlignJudge

    model = ChatOpenAI(model="ours-judge", base_url=url, api_key="unused", temperature=0, max_retries=0)  # type: ignore[arg-type]
    embeddings = OpenAIEmbeddings(
        model="ours-embed",
        base_url=url,
        api_key="unused",
        check_embedding_ctx_length=False,  # type: ignore[arg-type]
    )
    return MemAlignJudge(
        judge_spec(), model, embeddings=embeddings, home=home, alignment_context=AlignmentContext(check_evidence=check)
    )


def _example(index: int) -> dict[str, Any]:
    example = judged_example(index)
    return {"inputs": {"message": example["inputs"]}, "outputs": example["outputs"]}


def mlflow_judge() -> Any:
    from mlflow.genai.judges import make_judge

    return make_judge(name=JUDGE_NAME, instructions=INSTRUCTIONS, feedback_value_type=bool, model=MLFLOW_MODEL)


def mlflow_align(judge: Any, traces: list[Any]) -> Any:
    from mlflow.genai.judges.optimizers import MemAlignOptimizer

    optimizer = MemAlignOptimizer(reflection_lm=MLFLOW_MODEL, embedding_model=MLFLOW_EMBEDDINGS)
    return optimizer.align(judge, traces)


def mlflow_reload(name: str, experiment: str) -> Any:
    from mlflow.genai.scorers import get_scorer

    return get_scorer(name=name, experiment_id=experiment)


def log_traces(experiment: str, count: int) -> list[Any]:
    """`count` traced calls of a support bot, each with an expert's verdict and rationale (the workload's
    feedback), in MLflow's tracking store; returns the traces as MLflow's optimizer takes them."""
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    source = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="expert@example.com")
    mlflow.set_experiment(experiment_id=experiment)
    ids: list[str] = []
    for item in feedback_batch(0, count):
        _support_bot(item.outputs)(item.inputs)
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.log_feedback(
            trace_id=trace_id, name=JUDGE_NAME, value=item.value, rationale=item.rationale, source=source
        )
        ids.append(str(trace_id))
    found = {trace.info.trace_id: trace for trace in mlflow.search_traces(locations=[experiment], return_type="list")}
    return [found[trace_id] for trace_id in ids]


def _support_bot(answer: str) -> Callable[[str], str]:
    import mlflow

    @mlflow.trace(name="support_bot")
    def support_bot(message: str) -> str:
        return answer

    return support_bot


def _rows(timings: dict[str, dict[str, list[float]]], tokens: dict[str, list[int]], sizes: Any) -> list[dict[str, Any]]:
    cases = [
        ("align", f"align {sizes.vs_mlflow_n:,} feedback", sizes.vs_mlflow_n),
        ("realign", f"re-align +{sizes.vs_mlflow_added} into {sizes.vs_mlflow_n:,}", sizes.vs_mlflow_added),
        ("reload", f"reload a judge of {sizes.vs_mlflow_n:,} + first judgment", sizes.vs_mlflow_n),
        ("align_small", f"align {sizes.vs_mlflow_small} feedback", sizes.vs_mlflow_small),
        ("empty", "a judge with empty memory: one judgment", 0),
    ]
    rows = []
    for key, label, n in cases:
        found = {name: statistics.median(values) for name, values in timings.get(key, {}).items()}
        rows.append(_row(label, n, sizes, found.get("mlflow"), found.get("ours"), found.get("ours_no_check"), "s"))
    mlflow_tokens = statistics.mean(tokens["mlflow"]) if tokens["mlflow"] else None
    ours_tokens = statistics.mean(tokens["ours"]) if tokens["ours"] else None
    rows.append(
        _row(
            f"prompt tokens per judgment, aligned on {sizes.vs_mlflow_n:,}",
            sizes.vs_mlflow_n,
            sizes,
            mlflow_tokens,
            ours_tokens,
            None,
            "tokens",
        )
    )
    return rows


def _row(
    case: str, n: int, sizes: Any, mlflow: float | None, ours: float | None, no_check: float | None, unit: str
) -> dict[str, Any]:
    return {
        "case": case,
        "n": n,
        "latency_ms": sizes.latency_s * 1000,
        "mlflow": mlflow,
        "ours": ours,
        "ours_no_check": no_check,
        "ratio": ours / mlflow if ours and mlflow else None,
        "ratio_no_check": no_check / mlflow if no_check and mlflow else None,
        "unit": unit,
    }


def _rss_row(context: RunContext, sizes: Any) -> dict[str, Any]:
    """Each side aligns N in a fresh process of its own; VmRSS after the alignment."""
    found = {}
    for name in ("mlflow", "ours"):
        measured = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.vs_mlflow_rss",
                name,
                str(sizes.vs_mlflow_n),
                str(sizes.latency_s),
                str(context.folder(f"rss-{name}")),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
        found[name] = json.loads(measured.stdout.strip().splitlines()[-1])["rss_mb"]
    return _row(
        f"RSS after an align of {sizes.vs_mlflow_n:,}",
        sizes.vs_mlflow_n,
        sizes,
        found["mlflow"],
        found["ours"],
        None,
        "MB",
    )
