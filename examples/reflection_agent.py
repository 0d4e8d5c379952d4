"""A reflection agent: draft -> judge -> revise with the judge's rationale, at most N rounds.

The aligned judge is one node of an ordinary LangGraph graph (`judge.as_node`), and a conditional edge
loops back to the writer with the judge's comment until the draft passes or the rounds run out.

    export MEMALIGN_MODEL=openai:gpt-4.1-mini OPENAI_API_KEY=sk-...
    python examples/reflection_agent.py "My order arrived broken and I want my money back."
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from memalign_graph import Boolean, ConfigurationError, Feedback, JudgeSpec, MemAlignJudge, Verdict, resolve_chat_model

SPEC = JudgeSpec(
    name="support_reply",
    instructions="Is this customer-support reply ready to send: accurate, kind, and does it say what happens next?",
    output=Boolean(),
)

# What the support team's experts already told the judge (a real team would have many more).
EXPERT_FEEDBACK = [
    Feedback(
        inputs="I was charged twice for one order.",
        outputs="Two charges are recorded. The duplicate will be refunded.",
        value=False,
        judge_verdict=True,
        rationale="Correct but cold: open with an apology and say when the refund arrives.",
    ),
]

WRITER_PROMPT = "You write short, kind customer-support replies. Reply with the message only."
REVISE_PROMPT = "Your previous draft was:\n{draft}\n\nA reviewer said: {comment}\nWrite a better reply."


class ReflectionState(TypedDict, total=False):
    message: str
    draft: str
    review: Verdict
    rounds: int


def build_agent(writer: BaseChatModel, judge: MemAlignJudge, *, max_rounds: int = 3) -> CompiledStateGraph:
    """The agent graph: the judge reads `message` and `draft` and writes its verdict to `review`."""

    def draft(state: ReflectionState) -> dict[str, Any]:
        """Write a reply, or rewrite the last one with the judge's comment."""
        prompt = state["message"]
        if state.get("review"):
            prompt += "\n\n" + REVISE_PROMPT.format(draft=state["draft"], comment=state["review"]["comment"])
        reply = writer.invoke([SystemMessage(WRITER_PROMPT), HumanMessage(prompt)])
        return {"draft": str(reply.content).strip(), "rounds": state.get("rounds", 0) + 1}

    def next_step(state: ReflectionState) -> str:
        """Stop when the judge passes the draft or the rounds run out; otherwise revise."""
        if state["review"]["score"] or state["rounds"] >= max_rounds:
            return END
        return "draft"

    builder = StateGraph(ReflectionState)
    builder.add_node("draft", draft)
    builder.add_node("review", judge.as_node(inputs_key="message", outputs_key="draft", verdict_key="review"))
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_conditional_edges("review", next_step, ["draft", END])
    return builder.compile()


def main(
    message: str = "My order arrived broken and I want my money back.",
    *,
    writer: str | BaseChatModel | None = None,
    judge_model: str | BaseChatModel | None = None,
    embeddings: str | Embeddings | None = None,
    home: str | Path | None = None,
    max_rounds: int = 3,
) -> ReflectionState:
    """Align the judge on the experts' feedback, then let the agent draft until the judge passes it."""
    with ExitStack() as stack:
        if home is None:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="memalign-reflection-"))
        judge = stack.enter_context(MemAlignJudge(SPEC, judge_model, embeddings=embeddings, home=home))
        judge.align(EXPERT_FEEDBACK)
        agent = build_agent(
            resolve_chat_model(writer) if writer is not None else judge.model, judge, max_rounds=max_rounds
        )
        final: ReflectionState = {}
        for update in agent.stream({"message": message}, stream_mode="updates"):
            for node, values in update.items():
                if node == "draft":
                    print(f"--- draft {values['rounds']} ---\n{values['draft']}")
                else:
                    verdict = values["review"]
                    print(f"--- judge: {'pass' if verdict['score'] else 'revise'} --- {verdict['comment']}")
                final.update(values)
    return final


if __name__ == "__main__":
    try:
        main(*sys.argv[1:2])
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
