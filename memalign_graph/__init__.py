"""memalign-graph: MemAlign judge alignment as LangGraph state graphs.

An LLM judge learns from domain experts' natural-language feedback through two memories: semantic
(guidelines distilled from the feedback, in the alignment graph's checkpoint) and episodic (past
examples in Qdrant, the k most similar retrieved for each judgment).
"""

from memalign_graph.alignment import create_alignment_graph
from memalign_graph.config import local_minilm_embeddings, resolve_chat_model, resolve_embeddings
from memalign_graph.episodic import EpisodicStore, QdrantEpisodicStore
from memalign_graph.errors import (
    ConfigurationError,
    EpisodicStoreError,
    InvalidValueError,
    MemAlignError,
    VerdictParseError,
)
from memalign_graph.feedback import Feedback
from memalign_graph.feedback_graph import ExpertReview, FeedbackContext, create_feedback_graph
from memalign_graph.judge import MemAlignJudge
from memalign_graph.judging import create_judge_graph
from memalign_graph.migration import ServedMemory
from memalign_graph.semantic import CheckpointSemanticMemory, SemanticMemoryReader, memory_thread_id
from memalign_graph.spec import Boolean, Categorical, JudgeSpec, Pairwise, Score
from memalign_graph.state import (
    AlignmentContext,
    AlignmentReport,
    Episode,
    Guideline,
    JudgeContext,
    Verdict,
)

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
