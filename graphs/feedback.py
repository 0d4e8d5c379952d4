"""Feedback graph for the LangGraph server: judge, interrupt for the expert, align, judge again."""

from memalign_graph.feedback_graph import build_feedback_graph
from memalign_graph.serving import MemAlignSettings, resources_from_settings

graph = build_feedback_graph(resources_from_settings, context_schema=MemAlignSettings, name="feedback")
