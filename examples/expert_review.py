"""An expert review loop: the judge gives a verdict, an expert corrects it once, the judge changes its mind.

It runs the feedback graph (`judge.feedback_graph`): judge -> interrupt for the expert -> align ->
judge again. The thread is checkpointed, so the expert's answer could come hours later from another
process; here it comes from the terminal, or from the flags.

    export MEMALIGN_MODEL=openai:gpt-4.1-mini OPENAI_API_KEY=sk-...
    python examples/expert_review.py                       # asks you on the terminal
    python examples/expert_review.py --value false --rationale "Correct but cold: apologise first."
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langgraph.types import Command

from memalign_graph import Boolean, ConfigurationError, JudgeSpec, MemAlignJudge

SPEC = JudgeSpec(
    name="support_tone",
    instructions="Is the support bot's reply appropriate for the customer's message?",
    output=Boolean(),
)
EXAMPLE = {
    "inputs": "I was charged twice for my order!",
    "outputs": "Two charges are recorded. The duplicate will be reversed.",
}

Expert = Callable[[dict[str, Any]], dict[str, Any]]


def ask_on_terminal(pending: dict[str, Any]) -> dict[str, Any]:
    """The expert answers on the terminal: accept, or give the right verdict and why."""
    if input("Accept this verdict? [y/N] ").strip().lower() in {"y", "yes"}:
        return {"action": "accept"}
    value = input("The right verdict (true/false): ").strip()
    rationale = input("Why, in one sentence: ").strip()
    return {"action": "correct", "value": value, "rationale": rationale or None}


def main(
    *,
    expert: Expert = ask_on_terminal,
    model: str | BaseChatModel | None = None,
    embeddings: str | Embeddings | None = None,
    home: str | Path | None = None,
) -> dict[str, Any]:
    """Judge the example, take one expert review, and show the verdict before and after."""
    with ExitStack() as stack:
        if home is None:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="memalign-review-"))
        judge = stack.enter_context(MemAlignJudge(SPEC, model, embeddings=embeddings, home=home))
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        waiting = judge.feedback_graph.invoke(EXAMPLE, config)
        pending = waiting["__interrupt__"][0].value
        print(f"customer: {EXAMPLE['inputs']}\nreply:    {EXAMPLE['outputs']}")
        print(f"judge:    {pending['verdict']['score']} ({pending['verdict']['comment']})")
        result = judge.feedback_graph.invoke(Command(resume=expert(pending)), config)
        if result.get("updated_verdict"):
            after = result["updated_verdict"]
            print(f"after one correction, judge: {after['score']} ({after['comment']})")
            for guideline in judge.guidelines():
                print(f"learned: {guideline['text']}")
        return result


def _parse_args(argv: list[str]) -> Expert:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--value", help="answer as the expert without the terminal: the right verdict")
    parser.add_argument("--rationale", help="the expert's reason")
    args = parser.parse_args(argv)
    if args.value is None and args.rationale is None:
        return ask_on_terminal
    return lambda pending: {"action": "correct", "value": args.value, "rationale": args.rationale}


if __name__ == "__main__":
    expert = _parse_args(sys.argv[1:])
    try:
        main(expert=expert)
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
