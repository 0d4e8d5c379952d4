"""Alignment graph for the LangGraph server: feedback -> memory, on the judge's memory thread.

Run it on thread `memory_thread_id(judge, namespace)`: the server checkpoints its state there, and
that state is the judge's semantic memory that the judging and feedback graphs read.
"""

from memalign_graph.alignment.graph import build_alignment_graph
from memalign_graph.serving import MemAlignSettings, resources_from_settings

graph = build_alignment_graph(
    resources_from_settings, context_schema=MemAlignSettings, require_memory_thread=True, name="alignment"
)
