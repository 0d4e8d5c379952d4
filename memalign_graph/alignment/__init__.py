"""The alignment graph: feedback -> memory (validate -> distill -> dedupe -> write_memory)."""

from memalign_graph.alignment.explain import describe_distillation
from memalign_graph.alignment.graph import build_alignment_graph, create_alignment_graph

__all__ = ["build_alignment_graph", "create_alignment_graph", "describe_distillation"]
