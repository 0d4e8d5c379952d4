"""The alignment graph: feedback -> memory (validate -> distill -> dedupe -> write_memory)."""

from typing import TYPE_CHECKING

from memalign_graph.lazy import lazy_names

if TYPE_CHECKING:
    from memalign_graph.alignment.explain import describe_distillation
    from memalign_graph.alignment.graph import build_alignment_graph, create_alignment_graph

_WHERE = {
    "build_alignment_graph": "memalign_graph.alignment.graph",
    "create_alignment_graph": "memalign_graph.alignment.graph",
    "describe_distillation": "memalign_graph.alignment.explain",
}
__getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = ["build_alignment_graph", "create_alignment_graph", "describe_distillation"]
