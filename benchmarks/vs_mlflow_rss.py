"""One side of the side-by-side's RSS row, in a fresh process: `python -m benchmarks.vs_mlflow_rss mlflow|ours N
LATENCY_S FOLDER` aligns N feedback against a mock of its own and prints VmRSS after the alignment as JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(name: str, n: int, latency_s: float, folder: Path) -> None:
    from benchmarks import vs_mlflow
    from benchmarks.openai_mock import openai_mock
    from benchmarks.workload import feedback_batch

    os.environ.update(vs_mlflow._ENVIRONMENT)
    with openai_mock(latency_s) as (url, _traffic):
        if name == "mlflow":
            import dspy
            import mlflow

            for variable in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
                os.environ[variable] = url
            dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
            mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
            experiment = mlflow.create_experiment("rss")
            traces = vs_mlflow.log_traces(experiment, n)
            vs_mlflow.mlflow_align(vs_mlflow.mlflow_judge(), traces)
        else:
            with vs_mlflow.open_ours(url, folder, True) as judge:
                judge.align(feedback_batch(0, n))
                print(json.dumps({"rss_mb": rss_mb()}))
                return
    print(json.dumps({"rss_mb": rss_mb()}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]))
