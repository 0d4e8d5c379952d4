"""The judging graph: input -> verdict (retrieve -> build_working_memory -> judge -> parse)."""

from typing import TYPE_CHECKING

from memalign_graph.lazy import lazy_names

if TYPE_CHECKING:
    from memalign_graph.judging.graph import build_judge_graph, create_judge_graph

_WHERE = {
    "build_judge_graph": "memalign_graph.judging.graph",
    "create_judge_graph": "memalign_graph.judging.graph",
}
__getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = ["build_judge_graph", "create_judge_graph"]
