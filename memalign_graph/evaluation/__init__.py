"""The MemAlign evaluation protocol: datasets, ablations, metrics (exact match, Cohen's kappa, CCC) with
bootstrap intervals, every prediction with its provenance, results and plots (PNG, SVG, PDF).

load_examples     datasets   labelled examples from JSONL, CSV, JSON and the two built-in layouts
Variant           ablations  which memories and which parts of the feedback a run uses
ProtocolSettings  protocol   split, shards, seeds, variants and k
run_protocol      protocol   learning curves from empty memory, measured after every shard
results_table     results    the summary as a terminal table
"""

from typing import TYPE_CHECKING

from memalign_graph.lazy import lazy_names

if TYPE_CHECKING:
    from memalign_graph.evaluation.ablations import Variant
    from memalign_graph.evaluation.datasets import load_examples
    from memalign_graph.evaluation.protocol import ProtocolSettings, run_protocol
    from memalign_graph.evaluation.results import results_table

_WHERE = {
    "ProtocolSettings": "memalign_graph.evaluation.protocol",
    "Variant": "memalign_graph.evaluation.ablations",
    "load_examples": "memalign_graph.evaluation.datasets",
    "results_table": "memalign_graph.evaluation.results",
    "run_protocol": "memalign_graph.evaluation.protocol",
}
__getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = ["ProtocolSettings", "Variant", "load_examples", "results_table", "run_protocol"]
