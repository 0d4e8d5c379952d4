"""What `memalign memory` opens a judge with when it needs no model: inspection makes no model call."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from memalign_graph.cli.common import NO_MODEL
from memalign_graph.config import resolve_embeddings
from memalign_graph.errors import ConfigurationError


class UnconfiguredModel(BaseChatModel):
    """Stands in when no model is configured: inspection never calls it; a call says what to set."""

    @property
    def _llm_type(self) -> str:
        return "memalign-unconfigured"

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:
        raise ConfigurationError(NO_MODEL)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise ConfigurationError(NO_MODEL)


class LazyEmbeddings(Embeddings):
    """Resolves the embedding model on first use: showing memory needs none, rolling back does."""

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._resolved: Embeddings | None = None

    def _model(self) -> Embeddings:
        if self._resolved is None:
            self._resolved = resolve_embeddings(self._name)
        return self._resolved

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._model().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._model().embed_query(text)
