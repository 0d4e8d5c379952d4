"""The judging graph: input -> verdict (retrieve -> build_working_memory -> judge -> parse)."""

from memalign_graph.judging.graph import build_judge_graph, create_judge_graph

__all__ = ["build_judge_graph", "create_judge_graph"]
