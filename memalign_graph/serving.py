"""Per-run settings for graphs served by the LangGraph server (and LangGraph Studio).

The served graphs are compiled once, with nothing bound: each run names its judge, model, embeddings
and stores in its context, so one deployment serves many judges and tenants. Models, embeddings and
stores are opened on first use and shared by every later run that names the same ones.
"""

from __future__ import annotations

import atexit
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langgraph.runtime import Runtime
from pydantic import ValidationError

from memalign_graph.config import open_episodic_store, resolve_chat_model, resolve_embeddings, structured_output_setting
from memalign_graph.context import FeedbackContext
from memalign_graph.errors import ConfigurationError
from memalign_graph.memory.qdrant_store import QdrantEpisodicStore
from memalign_graph.resources import Resources
from memalign_graph.spec import JudgeSpec

JUDGE_HELP = (
    'context.judge: give the judge as a JudgeSpec object, e.g. {"name": "support_tone", '
    '"instructions": "Is the reply appropriate?", "output": {"kind": "boolean"}}'
)


@dataclass(frozen=True)
class MemAlignSettings(FeedbackContext):
    """A run's judge, model, embeddings and stores, beside the usual judging and alignment settings.

    `model` and `embeddings` are `init_chat_model` / `init_embeddings` strings (unset: the environment's
    MEMALIGN_MODEL / MEMALIGN_EMBEDDINGS, then the local MiniLM for embeddings). Episodes live in
    Qdrant at `qdrant_url`, else at the server process's `MEMALIGN_QDRANT_URL` (with its
    `MEMALIGN_QDRANT_API_KEY`: keys stay out of run contexts), else in local mode under `home`;
    semantic memory lives in the server's checkpointer, on the judge's memory thread.
    """

    judge: dict[str, Any] | None = None
    model: str | None = None
    embeddings: str | None = None
    home: str | None = None
    qdrant_url: str | None = None


class SettingsResolver:
    """Resolves the resources a run's settings name, opened once per process and shared."""

    def __call__(self, runtime: Runtime[Any]) -> Resources:
        settings = _settings(runtime)
        spec = _spec(json.dumps(settings.judge, sort_keys=True))
        model, embeddings, store = _shared(settings.model, settings.embeddings, settings.home, settings.qdrant_url)
        return Resources(
            spec=spec,
            model=model,
            embeddings=embeddings,
            episodic_store=store,
            structured_output=structured_output_setting(),
        )

    def ready(self, runtime: Runtime[Any]) -> bool:
        """Whether this run's stores and models are open already (then resolving is a lookup)."""
        settings = _settings(runtime)
        return (settings.model, settings.embeddings, settings.home, settings.qdrant_url) in _shared_cache


resources_from_settings = SettingsResolver()


def _settings(runtime: Runtime[Any]) -> MemAlignSettings:
    settings = runtime.context
    if not isinstance(settings, MemAlignSettings) or not settings.judge:
        raise ConfigurationError(JUDGE_HELP)
    return settings


@lru_cache(maxsize=256)
def _spec(judge_json: str) -> JudgeSpec:
    try:
        return JudgeSpec.model_validate_json(judge_json)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"context.judge: {problems}. {JUDGE_HELP}") from error


_shared_lock = threading.Lock()


@atexit.register
def _close_shared() -> None:
    """Close the stores runs opened, so local Qdrant paths are released cleanly at exit."""
    with _shared_lock:
        for _model, _embeddings, store in _shared_cache.values():
            store.close()
        _shared_cache.clear()


_shared_cache: dict[tuple[str | None, ...], tuple[Any, Any, QdrantEpisodicStore]] = {}


def _shared(
    model: str | None, embeddings: str | None, home: str | None, qdrant_url: str | None
) -> tuple[Any, Any, Any]:
    key = (model, embeddings, home, qdrant_url)
    with _shared_lock:
        if key not in _shared_cache:
            store = open_episodic_store(home=home, url=qdrant_url)
            _shared_cache[key] = (resolve_chat_model(model), resolve_embeddings(embeddings), store)
        return _shared_cache[key]
