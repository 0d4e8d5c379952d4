"""The judging graph as one node of a user's graph: their keys in, the verdict under their key out.

The node is `pick keys -> the judging graph -> deliver the verdict`, so LangGraph sees the judging graph
as a real subgraph: `get_graph(xray=True)` and Studio draw its steps, a checkpointed parent keeps its
state under the node's namespace, and `stream(subgraphs=True)` shows what each step produced (the
guidelines and episodes retrieved, the prompt, the raw answer, the verdict). Only the verdict reaches
the parent's state: the judge's working keys (`answer`, `episodes`, ...) never overwrite a parent key of
the same name.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda, RunnableSequence

from memalign_graph.context import JudgeContext
from memalign_graph.errors import InvalidValueError
from memalign_graph.judging.graph import build_judge_graph
from memalign_graph.judging.state import JudgeInput, JudgeState
from memalign_graph.resources import Resources, fixed


def judge_node(
    resources: Resources,
    context: JudgeContext,
    *,
    inputs_key: str,
    outputs_key: str | None,
    expectations_key: str | None,
    verdict_key: str,
) -> Runnable[dict[str, Any], dict[str, Any]]:
    """The judging graph over these resources and settings as a node reading and writing the given keys."""
    name = f"judge:{resources.spec.name}"
    # Every step's update visible (a subgraph's updates are filtered to its output schema), settings fixed.
    graph = build_judge_graph(fixed(resources), name=name, context=context, output_schema=JudgeState)

    def pick(state: dict[str, Any]) -> JudgeInput:
        if inputs_key not in state:
            raise InvalidValueError(
                f"judge node {name!r}: the state has no key {inputs_key!r} to judge; "
                f"pass as_node(inputs_key=...) naming the key that holds the inputs (keys: {sorted(state)})."
            )
        return JudgeInput(
            inputs=state[inputs_key],
            outputs=state.get(outputs_key) if outputs_key else None,
            expectations=state.get(expectations_key) if expectations_key else None,
        )

    def deliver(result: dict[str, Any]) -> dict[str, Any]:
        return {verdict_key: result["verdict"]}

    # A plain sequence (no binding around it): LangGraph finds a subgraph inside a sequence's steps.
    return RunnableSequence(
        RunnableLambda(pick, name="pick_example"), graph, RunnableLambda(deliver, name="deliver_verdict"), name=name
    )
