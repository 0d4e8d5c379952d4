"""The judging graph: input -> verdict, through both memories.

START -> retrieve -> build_working_memory -> judge -> parse -> END, with parse looping back to judge
when the model's answer is not a valid value, until the attempts run out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import get_runtime

from memalign_graph.context import JudgeContext
from memalign_graph.judging.leakage import SelfCheck
from memalign_graph.judging.state import JudgeInput, JudgeOutput, JudgeState
from memalign_graph.judging.verdict import parse_verdict, verdict_schema
from memalign_graph.judging.working_memory import build_judge_prompt, memory_used
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.reader import SemanticMemoryReader
from memalign_graph.model_calls import MODEL_RETRY, StructuredOutputError
from memalign_graph.prompts import JUDGE_RETRY_PROMPT
from memalign_graph.rendering import retrieval_text
from memalign_graph.resources import ResourceResolver, Resources, aresolve, fixed, namespace_for, semantic_memory_of
from memalign_graph.spec import JudgeSpec
from memalign_graph.structured_output import Answer, StructuredOutput

T = TypeVar("T")
JudgeGraph = CompiledStateGraph[JudgeState, JudgeContext, JudgeInput, JudgeOutput]


def node(step: Callable[..., Any], astep: Callable[..., Awaitable[Any]]) -> RunnableCallable:
    """A node (or routing function) with a sync and an async body, wrapped as LangGraph wraps a plain function.

    LangGraph's own `RunnableCallable` (the base of langgraph-prebuilt's ToolNode; internal, hence the
    pin below 1.3) inspects its function once and opens no tracing span of its own. A `RunnableLambda`
    did both on every call: judging took 7.0 ms of CPU (sync) and 9.8 ms (async) per judgment with it,
    3.7 and 6.2 ms without. A plain sync function alone would run in a worker thread under `ainvoke`.
    """
    return RunnableCallable(step, astep, name=step.__name__, trace=False)


def inline(step: Callable[[JudgeState], T]) -> RunnableCallable:
    """A CPU-only step that async runs call directly on the event loop."""

    async def run(state: JudgeState) -> T:
        return step(state)

    return node(step, run)


def answered(state: JudgeState, answer: Answer) -> dict[str, Any]:
    return {
        "answer": answer.parsed,
        "error": None,
        "attempts": state.get("attempts", 0) + 1,
        "raw_outputs": [*state.get("raw_outputs", []), answer.raw],
        "structured_output": answer.method,
    }


def unanswered(state: JudgeState, error: StructuredOutputError) -> dict[str, Any]:
    return {
        "answer": {},
        "error": str(error),
        "attempts": state.get("attempts", 0) + 1,
        "raw_outputs": [*state.get("raw_outputs", []), error.raw],
    }


def create_judge_graph(
    model: BaseChatModel,
    /,
    *,
    spec: JudgeSpec,
    embeddings: Embeddings,
    episodic_store: EpisodicStore,
    semantic_memory: SemanticMemoryReader | None = None,
    namespace: str | None = None,
    structured_output: StructuredOutput = "auto",
    name: str | None = None,
) -> JudgeGraph:
    """Compile the judging graph for one judge. Per-run settings come from `JudgeContext`.

    Without `semantic_memory`, guidelines are read through the checkpointer of the run itself: nest
    the graph in a checkpointed graph, or serve it with the LangGraph server. With `namespace`, every
    run is bound to it (a run's context naming another is refused). `structured_output` is how the model
    is asked for JSON (see `memalign_graph.structured_output`; `auto` adapts to the server).
    """
    resources = Resources(
        spec=spec,
        model=model,
        embeddings=embeddings,
        episodic_store=episodic_store,
        semantic_memory=semantic_memory,
        namespace=namespace,
        structured_output=structured_output,
    )
    return build_judge_graph(fixed(resources), name=name or f"judge:{spec.name}")


def build_judge_graph(
    resolve: ResourceResolver,
    *,
    context_schema: type[JudgeContext] = JudgeContext,
    name: str = "judge",
    context: JudgeContext | None = None,
    output_schema: type[Any] = JudgeOutput,
) -> JudgeGraph:
    """The judging graph over resources resolved per run (see `create_judge_graph` for the usual form).

    `context` fixes the per-run settings, whatever the run's own context is: a judge nested in a user's
    graph inherits that graph's context, which is not the judge's. `output_schema=JudgeState` makes
    every step's update visible to a parent's `stream(subgraphs=True)` (updates are filtered to the
    output schema's keys).
    """

    def settings(runtime: Any) -> JudgeContext:
        return context or runtime.context or JudgeContext()

    def retrieve(state: JudgeState) -> dict[str, Any]:
        """Fetch both memories: every guideline, and the k past examples nearest to this input (never one
        the run excludes); note which of them are this very example (the leakage guard)."""
        context, resources, example = retrieval(state)
        namespace = namespace_for(resources, context)
        snapshot = semantic_memory_of(resources).read(resources.spec.name, namespace)
        guard = self_check(state, example, context)
        episodes: list[Any] = []
        fetched: list[Any] = []
        if context.k > 0 and snapshot.has_episodes:
            vector = resources.embeddings.embed_query(retrieval_text(example, max_tokens=context.field_token_budget))
            store, name = resources.episodic_store, resources.spec.name
            episodes, fetched = guard.search(lambda limit: store.search(name, namespace, vector, limit), context.k)
        return retrieved(example, guard, snapshot.guidelines, episodes, fetched)

    async def aretrieve(state: JudgeState) -> dict[str, Any]:
        """`retrieve` for async runs: the semantic read and the query embedding are awaited."""
        runtime = get_runtime()
        resources = await aresolve(resolve, runtime)
        context, example = settings(runtime), resources.spec.validate_record(state, where="input")
        namespace = namespace_for(resources, context)
        snapshot = await semantic_memory_of(resources).aread(resources.spec.name, namespace)
        guard = self_check(state, example, context)
        episodes: list[Any] = []
        fetched: list[Any] = []
        if context.k > 0 and snapshot.has_episodes:
            text = retrieval_text(example, max_tokens=context.field_token_budget)
            vector = await resources.embeddings.aembed_query(text)
            store, name = resources.episodic_store, resources.spec.name
            episodes, fetched = await guard.asearch(
                lambda limit: store.asearch(name, namespace, vector, limit), context.k
            )
        return retrieved(example, guard, snapshot.guidelines, episodes, fetched)

    def retrieval(state: JudgeState) -> tuple[JudgeContext, Resources, dict[str, Any]]:
        runtime = get_runtime()
        resources = resolve(runtime)
        return settings(runtime), resources, resources.spec.validate_record(state, where="input")

    def self_check(state: JudgeState, example: dict[str, Any], context: JudgeContext) -> SelfCheck:
        return SelfCheck.of(
            example,
            given_id=state.get("example_id"),
            exclude_ids=state.get("exclude_ids") or (),
            exclude_self=context.exclude_self,
        )

    def retrieved(
        example: dict[str, Any], guard: SelfCheck, guidelines: list[Any], episodes: list[Any], fetched: list[Any]
    ) -> dict[str, Any]:
        shown_guidelines, in_memory, excluded = guard.screen(guidelines, fetched)
        return {
            **example,
            "guidelines": shown_guidelines,
            "episodes": episodes,
            "in_memory": in_memory,
            "excluded": excluded,
            "attempts": 0,
            "raw_outputs": [],
            "error": None,
        }

    def build_working_memory(state: JudgeState) -> dict[str, Any]:
        """Lay out the prompt within budget: instructions and guidelines first, examples last."""
        runtime = get_runtime()
        context = settings(runtime)
        memory = build_judge_prompt(
            resolve(runtime).spec,
            state,
            state.get("guidelines", []),
            state.get("episodes", []),
            guideline_token_budget=context.guideline_token_budget,
            field_token_budget=context.field_token_budget,
        )
        used = memory_used(state.get("guidelines", []), state.get("episodes", []), memory)
        return {"working_memory": memory, "memory_used": used}

    def ask(state: JudgeState) -> tuple[Resources, list[BaseMessage], dict[str, Any]]:
        """The judging prompt, with the last bad answer and its reason when this is a retry."""
        resources = resolve(get_runtime())
        memory = state["working_memory"]
        messages: list[BaseMessage] = [SystemMessage(memory["system"]), HumanMessage(memory["user"])]
        if state.get("error") and state.get("raw_outputs"):
            retry = JUDGE_RETRY_PROMPT.format(error=state["error"], value_description=resources.spec.output.describe())
            messages += [AIMessage(state["raw_outputs"][-1]), HumanMessage(retry)]
        return resources, messages, verdict_schema(resources.spec)

    def judge(state: JudgeState) -> dict[str, Any]:
        """Ask the model for a rationale and a typed value; a bad answer is retried with its reason."""
        resources, messages, schema = ask(state)
        try:
            return answered(state, resources.calls.invoke(schema, messages))
        except StructuredOutputError as error:
            return unanswered(state, error)

    async def ajudge(state: JudgeState) -> dict[str, Any]:
        """`judge` on the event loop: async graphs and `ainvoke` wait on the model without a thread."""
        resources, messages, schema = ask(state)
        try:
            return answered(state, await resources.calls.ainvoke(schema, messages))
        except StructuredOutputError as error:
            return unanswered(state, error)

    def parse(state: JudgeState) -> dict[str, Any]:
        """Hold the answer to the output type; never turn a bad answer into a verdict."""
        runtime = get_runtime()
        context = settings(runtime)
        resources = resolve(runtime)
        return parse_verdict(
            resources.spec,
            state,
            namespace=namespace_for(resources, context),
            max_attempts=context.max_parse_attempts,
        )

    def after_parse(state: JudgeState) -> str:
        return "judge" if state.get("error") else END

    builder = StateGraph(
        JudgeState, context_schema=context_schema, input_schema=JudgeInput, output_schema=output_schema
    )
    builder.add_node("retrieve", node(retrieve, aretrieve))
    builder.add_node("build_working_memory", inline(build_working_memory))
    builder.add_node("judge", node(judge, ajudge), retry_policy=MODEL_RETRY)
    builder.add_node("parse", inline(parse))
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "build_working_memory")
    builder.add_edge("build_working_memory", "judge")
    builder.add_edge("judge", "parse")
    builder.add_conditional_edges("parse", inline(after_parse), ["judge", END])
    return builder.compile(name=name)
