"""Feedback from where experts already leave it, and verdicts back to where people read them.

- `from_mlflow`: HUMAN assessments on MLflow traces (what MLflow's own MemAlign aligns from).
- `from_langsmith`: LangSmith feedback on runs (an expert's own, or a correction of an evaluator's);
  `to_langsmith` writes a verdict back as feedback on the run it judged.
- `from_openevals`: openevals few-shot examples `{inputs, outputs, score, reasoning}`.
- `import_mlflow_judge`: an MLflow `MemoryAugmentedJudge`'s guidelines and examples into a judge's memory.

Every source gives each feedback an id from where it lives (`mlflow:<assessment>`, `langsmith:<feedback>`,
or the judged example's hash), so importing the same feedback again changes nothing, and a corrected
one replaces what it corrects. The `mlflow` and `langsmith` extras install what these need.
"""

from memalign_graph.sources.langsmith_runs import from_langsmith, to_langsmith
from memalign_graph.sources.mlflow_judge import MlflowJudgeImport, import_mlflow_judge
from memalign_graph.sources.mlflow_traces import from_mlflow
from memalign_graph.sources.openevals_examples import from_openevals

__all__ = [
    "MlflowJudgeImport",
    "from_langsmith",
    "from_mlflow",
    "from_openevals",
    "import_mlflow_judge",
    "to_langsmith",
]
