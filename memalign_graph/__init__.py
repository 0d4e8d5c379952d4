"""memalign-graph: MemAlign judge alignment as LangGraph state graphs.

An LLM judge learns from domain experts' natural-language feedback through two memories: semantic
(guidelines distilled from the feedback, in the alignment graph's checkpoint) and episodic (past
examples in Qdrant, the k most similar retrieved for each judgment).
"""

from memalign_graph.alignment.graph import create_alignment_graph
from memalign_graph.config import local_minilm_embeddings, resolve_chat_model, resolve_embeddings
from memalign_graph.context import AlignmentContext, FeedbackContext, JudgeContext
from memalign_graph.errors import (
    ConfigurationError,
    EpisodicStoreError,
    InvalidValueError,
    MemAlignError,
    VerdictParseError,
)
from memalign_graph.feedback import Feedback
from memalign_graph.feedback_graph import ExpertReview, create_feedback_graph
from memalign_graph.judge import MemAlignJudge
from memalign_graph.judging.graph import create_judge_graph
from memalign_graph.memory.episodic import EpisodicStore, QdrantEpisodicStore
from memalign_graph.memory.semantic import CheckpointSemanticMemory, SemanticMemoryReader, memory_thread_id
from memalign_graph.memory.transfer import ServedMemory
from memalign_graph.records import AlignmentReport, Episode, Guideline, Verdict
from memalign_graph.spec import Boolean, Categorical, JudgeSpec, Pairwise, Score

__all__ = [
    "AlignmentContext",
    "AlignmentReport",
    "Boolean",
    "Categorical",
    "CheckpointSemanticMemory",
    "ConfigurationError",
    "Episode",
    "ExpertReview",
    "FeedbackContext",
    "EpisodicStore",
    "EpisodicStoreError",
    "Feedback",
    "Guideline",
    "InvalidValueError",
    "JudgeContext",
    "JudgeSpec",
    "MemAlignError",
    "MemAlignJudge",
    "Pairwise",
    "QdrantEpisodicStore",
    "Score",
    "SemanticMemoryReader",
    "ServedMemory",
    "Verdict",
    "VerdictParseError",
    "create_alignment_graph",
    "create_feedback_graph",
    "create_judge_graph",
    "local_minilm_embeddings",
    "memory_thread_id",
    "resolve_chat_model",
    "resolve_embeddings",
]
