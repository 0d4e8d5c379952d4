"""Quick start: align a hallucination judge on 20 expert labels and measure it on 20 held-out ones.

Run it with a model configured in the environment, e.g.

    export MEMALIGN_MODEL=openai:gpt-4.1-mini OPENAI_API_KEY=sk-...
    python examples/quickstart.py

The data is a 40-row sample of HaluEval (people marked which chat responses hallucinate; see
examples/data/README.md). The judge first answers with its instructions alone, then learns from the
training rows' labels and the spans people marked, then answers the held-out rows again. Memory
lives in a fresh temporary folder, so every run starts from an unaligned judge.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from memalign_graph import (
    Categorical,
    ConfigurationError,
    Feedback,
    JudgeSpec,
    MemAlignJudge,
    ProviderDownError,
    Verdict,
)
from memalign_graph.alignment import describe_distillation
from memalign_graph.model_notices import describe_model

DATA = Path(__file__).resolve().parent / "data" / "halueval_sample.jsonl"
SHOWN_FAILURES = 5

SPEC = JudgeSpec(
    name="halueval_hallucination",
    instructions=(
        "Does the response contain hallucinated information, given the user's query? Hallucinated "
        "information is anything fabricated, false or unverifiable: invented facts, numbers, sources or "
        "content the response claims to have but cannot. Answer 'yes' if the response contains any, "
        "'no' if everything it says is accurate or verifiable."
    ),
    output=Categorical(labels=("yes", "no")),
)


def load_rows(path: Path = DATA) -> list[dict[str, Any]]:
    """The sample's rows in file order (normalized schema: id, inputs, outputs, label, rationale, ...)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def split(rows: Sequence[dict[str, Any]], train_size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train on the first train_size/2 'yes' and 'no' rows, test on the rest; file order is kept.

    Balanced labels keep both kinds of mistake in the feedback; a fixed rule (no shuffling) makes
    every run see the same split, so two runs differ only by what the model does.
    """
    per_label = train_size // 2
    counts = {label: sum(row["label"] == label for row in rows) for label in ("yes", "no")}
    if train_size % 2 or per_label < 1 or per_label >= min(counts.values()):
        raise ValueError(
            f"train_size: {train_size} must be even, at least 2 and leave held-out rows of both labels "
            f"(the sample has {counts['yes']} 'yes' and {counts['no']} 'no' rows)."
        )
    taken = {"yes": 0, "no": 0}
    train, test = [], []
    for row in rows:
        if taken[row["label"]] < per_label:
            taken[row["label"]] += 1
            train.append(row)
        else:
            test.append(row)
    return train, test


def example(row: dict[str, Any]) -> dict[str, Any]:
    """What the judge sees of a row: the query and the response, never the label."""
    return {"inputs": row["inputs"], "outputs": row["outputs"]}


def agreement(verdicts: Sequence[Verdict | Exception], rows: Sequence[dict[str, Any]]) -> float:
    """The share of rows where the judge's label equals the people's label (exact match).

    A row the judge gave no verdict for counts as a disagreement: nothing is guessed for it.
    """
    return sum(
        not isinstance(verdict, Exception) and verdict["score"] == row["label"]
        for verdict, row in zip(verdicts, rows, strict=True)
    ) / len(rows)


def judge_all(judge: MemAlignJudge, rows: Sequence[dict[str, Any]]) -> list[Verdict | Exception]:
    """Judge rows in parallel; a row without a valid verdict is reported and kept as its error.

    With no verdict at all there is nothing to measure: that is an error (a provider that is down says
    so once), never an agreement of 0%.
    """
    verdicts = judge.batch([example(row) for row in rows], return_exceptions=True)
    failed = [(row, verdict) for row, verdict in zip(rows, verdicts, strict=True) if isinstance(verdict, Exception)]
    if failed and len(failed) == len(rows):
        down = next((error for _, error in failed if isinstance(error, ProviderDownError)), None)
        raise down or NoVerdicts(f"no verdict for any of {len(rows)} rows; the first: {failed[0][1]}")
    for row, verdict in failed[:SHOWN_FAILURES]:
        print(f"warning: no verdict for {row['id']}: {verdict}", file=sys.stderr)
    if len(failed) > SHOWN_FAILURES:
        print(f"warning: ... and {len(failed) - SHOWN_FAILURES} more rows without a verdict", file=sys.stderr)
    return verdicts


class NoVerdicts(RuntimeError):
    """Every judgment failed: there is no agreement to report."""


def main(
    model: str | BaseChatModel | None = None,
    embeddings: str | Embeddings | None = None,
    home: str | Path | None = None,
    train_size: int = 20,
    test_size: int | None = None,
) -> dict[str, Any]:
    """Judge held-out rows, align on the training rows, judge the held-out rows again; print and return the numbers.

    `model` and `embeddings` default to the environment (MEMALIGN_MODEL, MEMALIGN_BASE_URL) and the
    local all-MiniLM-L6-v2. `home` defaults to a temporary folder deleted afterwards; pass a folder to
    keep the memory (a second run on it starts from the already aligned judge). `test_size` judges only
    the first held-out rows (a slow model's quick look); by default all of them.
    """
    train, test = split(load_rows(), train_size)
    test = test[:test_size] if test_size else test
    with ExitStack() as stack:
        if home is None:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="memalign-quickstart-"))
        judge = stack.enter_context(MemAlignJudge(SPEC, model, embeddings=embeddings, home=home))
        print(f"model: {describe_model(judge.model)}")
        print(f"data: {DATA.name}, {len(train)} training rows, {len(test)} held-out rows")

        print(f"judging {len(train) + len(test)} rows before alignment ...")
        verdicts = judge_all(judge, [*train, *test])
        train_verdicts, before_verdicts = verdicts[: len(train)], verdicts[len(train) :]
        before = agreement(before_verdicts, test)

        feedback = [
            Feedback(
                id=row["id"],
                inputs=row["inputs"],
                outputs=row["outputs"],
                value=row["label"],
                rationale=row["rationale"],
                judge_verdict=None if isinstance(verdict, Exception) else verdict["score"],
            )
            for row, verdict in zip(train, train_verdicts, strict=True)
        ]
        mistakes = sum(
            not isinstance(verdict, Exception) and verdict["score"] != row["label"]
            for verdict, row in zip(train_verdicts, train, strict=True)
        )
        print(f"aligning on {len(feedback)} feedback items ({mistakes} correct a mistake of the judge) ...")
        started = time.perf_counter()
        report = judge.align(feedback)
        align_seconds = time.perf_counter() - started
        for line in describe_distillation(report):
            print(line)

        print(f"judging {len(test)} held-out rows after alignment ...")
        after = agreement(judge_all(judge, test), test)
        guidelines = judge.guidelines()

    print()
    print(f"agreement on {len(test)} held-out examples: {before:.0%} -> {after:.0%}")
    print(f"alignment took {align_seconds:.1f} s (wall time)")
    print(f"learned guidelines ({len(guidelines)}):")
    for guideline in guidelines:
        print(f"  - [{len(guideline['feedback_ids'])} feedback] {guideline['text']}")
    return {
        "before": before,
        "after": after,
        "guidelines": guidelines,
        "align_seconds": align_seconds,
        "train_ids": [row["id"] for row in train],
        "test_ids": [row["id"] for row in test],
        "report": report,
    }


if __name__ == "__main__":
    try:
        main()
    except ConfigurationError as error:
        # A missing model is a setup step, not a crash: say what to set, without a traceback.
        print(error, file=sys.stderr)
        sys.exit(2)
    except (ProviderDownError, NoVerdicts) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
