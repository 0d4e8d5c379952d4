"""Judging graph for the LangGraph server: input -> verdict, reading the judge's memory thread."""

from memalign_graph.judging.graph import build_judge_graph
from memalign_graph.serving import MemAlignSettings, resources_from_settings

graph = build_judge_graph(resources_from_settings, context_schema=MemAlignSettings, name="judging")
