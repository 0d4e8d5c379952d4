"""memalign-graph: MemAlign judge alignment as LangGraph state graphs.

An LLM judge learns from experts' natural-language feedback through two memories: semantic
(guidelines distilled from the feedback, in the alignment graph's checkpoint) and episodic (past
examples in Qdrant, the k most similar retrieved for each judgment).

The public API, one line a name (module: meaning):

    JudgeSpec                  spec             a judge: its criterion, the fields it reads, its verdict type
    Boolean                    spec             a verdict type: true or false
    Categorical                spec             a verdict type: one label of a fixed list
    Score                      spec             a verdict type: a number on a closed scale
    Pairwise                   spec             a verdict type: A, B or tie between two outputs
    Feedback                   feedback         what an expert said about one example: a value, a rationale
    Guideline                  records          a rule distilled from feedback, with the ids it came from
    Episode                    records          a past example retrieved for a judgment
    Verdict                    records          a judgment: {key, score, comment, metadata}
    AlignmentReport            records          what an alignment did: added, forgotten, distilled, pending
    JudgeContext               context          per-run settings of judging (namespace, k, budgets, attempts)
    AlignmentContext           context          per-run settings of alignment (batches, similarity, episodes)
    FeedbackContext            context          both, and whether accepted verdicts are kept
    create_alignment_graph     alignment        THE ALIGNMENT GRAPH: validate -> distill -> dedupe -> write_memory
    create_judge_graph         judging          THE JUDGING GRAPH: retrieve -> build_working_memory -> judge -> parse
    create_feedback_graph      feedback_graph   judge -> interrupt for the expert -> align -> rejudge
    ExpertReview               feedback_graph   the expert's answer to an interrupt: accept, or correct
    MemoryThread               memory.semantic  SEMANTIC MEMORY's one owner: read, align, roll back, write, rewrite
    memory_thread_id           memory.ledger    the thread that holds a judge's semantic memory in a namespace
    CheckpointSemanticMemory   memory.reader    the guidelines a judgment applies, cached by checkpoint
    SemanticMemoryReader       memory.reader    the protocol a judging graph reads guidelines through
    EpisodicStore              memory.episodic  EPISODIC MEMORY's protocol: every call confined to one judge
    QdrantEpisodicStore        memory           episodic memory on Qdrant: a local path, in memory, or a server
    EdgeEpisodicStore          memory.edge_store  episodic memory on Qdrant's embedded engine (large local memories)
    ServedMemory               memory.transfer  a LangGraph server's judge, for export and import
    MemAlignJudge              judge            the facade: stores from configuration, graphs bound to a namespace
    create_memalign_evaluator  evaluators       an aligned judge as a LangSmith / openevals evaluator, in one call
    create_async_memalign_evaluator  evaluators  the same for `langsmith.aevaluate` and async code
    create_comparative_memalign_evaluator  evaluators  a pairwise judge for `langsmith.evaluate_comparative`
    EvaluatorResult            evaluator_results  a verdict as LangSmith takes it: key, score (never a label), value
    resolve_chat_model         config           a chat model from an instance, a string or MEMALIGN_MODEL
    resolve_embeddings         config           embeddings from an instance, a string, MEMALIGN_EMBEDDINGS, or local
    local_minilm_embeddings    config           the offline all-MiniLM-L6-v2 the `local` extra ships
    MemAlignError              errors           the base of every error raised on purpose; each names the fix
    ConfigurationError         errors           a model, store or setting is missing or wrong
    InvalidValueError          errors           a record or verdict does not fit the judge
    EpisodicStoreError         errors           the episodic store cannot be used as configured
    VerdictParseError          errors           no valid verdict after every retry (nothing is made up)
    ProviderDownError          errors           the model provider failed alike several times in a row

Also: `memalign_graph.evaluation` (the MemAlign protocol, metrics, results, plots), `memalign_graph.serving`
(what `langgraph.json` serves), `memalign_graph.sources` (feedback from MLflow, LangSmith and openevals,
verdicts back to LangSmith, MLflow-aligned judges moved in), `memalign_graph.regressions` (fixed and broken
verdicts around an alignment), `memalign_graph.review_queue` (what experts should review next), and the
`memalign` command (`memalign_graph.cli`).
"""

# Names load on first use: `import memalign_graph` stays fast (a command's --help, a served graph's start),
# and what a name needs (LangGraph, LangChain, Qdrant's client) is imported when the name is.
from typing import TYPE_CHECKING

from memalign_graph.lazy import lazy_names

if TYPE_CHECKING:
    from memalign_graph.alignment import create_alignment_graph
    from memalign_graph.config import local_minilm_embeddings, resolve_chat_model, resolve_embeddings
    from memalign_graph.context import AlignmentContext, FeedbackContext, JudgeContext
    from memalign_graph.errors import (
        ConfigurationError,
        EpisodicStoreError,
        InvalidValueError,
        MemAlignError,
        ProviderDownError,
        VerdictParseError,
    )
    from memalign_graph.evaluator_results import EvaluatorResult
    from memalign_graph.evaluators import (
        create_async_memalign_evaluator,
        create_comparative_memalign_evaluator,
        create_memalign_evaluator,
    )
    from memalign_graph.feedback import Feedback
    from memalign_graph.feedback_graph import ExpertReview, create_feedback_graph
    from memalign_graph.judge import MemAlignJudge
    from memalign_graph.judging import create_judge_graph
    from memalign_graph.memory.edge_store import EdgeEpisodicStore
    from memalign_graph.memory.episodic import EpisodicStore
    from memalign_graph.memory.qdrant_store import QdrantEpisodicStore
    from memalign_graph.memory.reader import CheckpointSemanticMemory, SemanticMemoryReader
    from memalign_graph.memory.semantic import MemoryThread, memory_thread_id
    from memalign_graph.memory.transfer import ServedMemory
    from memalign_graph.records import AlignmentReport, Episode, Guideline, Verdict
    from memalign_graph.spec import Boolean, Categorical, JudgeSpec, Pairwise, Score

_WHERE: dict[str, str] = {
    "AlignmentContext": "memalign_graph.context",
    "AlignmentReport": "memalign_graph.records",
    "Boolean": "memalign_graph.spec",
    "Categorical": "memalign_graph.spec",
    "CheckpointSemanticMemory": "memalign_graph.memory.reader",
    "ConfigurationError": "memalign_graph.errors",
    "Episode": "memalign_graph.records",
    "EdgeEpisodicStore": "memalign_graph.memory.edge_store",
    "EpisodicStore": "memalign_graph.memory.episodic",
    "EpisodicStoreError": "memalign_graph.errors",
    "EvaluatorResult": "memalign_graph.evaluator_results",
    "ExpertReview": "memalign_graph.feedback_graph",
    "Feedback": "memalign_graph.feedback",
    "FeedbackContext": "memalign_graph.context",
    "Guideline": "memalign_graph.records",
    "InvalidValueError": "memalign_graph.errors",
    "JudgeContext": "memalign_graph.context",
    "JudgeSpec": "memalign_graph.spec",
    "MemAlignError": "memalign_graph.errors",
    "MemAlignJudge": "memalign_graph.judge",
    "MemoryThread": "memalign_graph.memory.semantic",
    "Pairwise": "memalign_graph.spec",
    "ProviderDownError": "memalign_graph.errors",
    "QdrantEpisodicStore": "memalign_graph.memory.qdrant_store",
    "Score": "memalign_graph.spec",
    "SemanticMemoryReader": "memalign_graph.memory.reader",
    "ServedMemory": "memalign_graph.memory.transfer",
    "Verdict": "memalign_graph.records",
    "VerdictParseError": "memalign_graph.errors",
    "create_alignment_graph": "memalign_graph.alignment",
    "create_async_memalign_evaluator": "memalign_graph.evaluators",
    "create_comparative_memalign_evaluator": "memalign_graph.evaluators",
    "create_feedback_graph": "memalign_graph.feedback_graph",
    "create_judge_graph": "memalign_graph.judging",
    "create_memalign_evaluator": "memalign_graph.evaluators",
    "local_minilm_embeddings": "memalign_graph.config",
    "memory_thread_id": "memalign_graph.memory.semantic",
    "resolve_chat_model": "memalign_graph.config",
    "resolve_embeddings": "memalign_graph.config",
}


__getattr__, __dir__ = lazy_names(__name__, _WHERE)


__all__ = [
    "AlignmentContext",
    "AlignmentReport",
    "Boolean",
    "Categorical",
    "CheckpointSemanticMemory",
    "ConfigurationError",
    "EdgeEpisodicStore",
    "Episode",
    "EvaluatorResult",
    "EpisodicStore",
    "EpisodicStoreError",
    "ExpertReview",
    "Feedback",
    "FeedbackContext",
    "Guideline",
    "InvalidValueError",
    "JudgeContext",
    "JudgeSpec",
    "MemAlignError",
    "MemAlignJudge",
    "MemoryThread",
    "Pairwise",
    "ProviderDownError",
    "QdrantEpisodicStore",
    "Score",
    "SemanticMemoryReader",
    "ServedMemory",
    "Verdict",
    "VerdictParseError",
    "create_alignment_graph",
    "create_async_memalign_evaluator",
    "create_comparative_memalign_evaluator",
    "create_feedback_graph",
    "create_judge_graph",
    "create_memalign_evaluator",
    "local_minilm_embeddings",
    "memory_thread_id",
    "resolve_chat_model",
    "resolve_embeddings",
]
