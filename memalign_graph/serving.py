"""What a run of the graphs served by the LangGraph server (and LangGraph Studio) may choose, and what the
deployment decides.

The served graphs are compiled once, with nothing bound: each run names its judge in its context, so one
deployment serves many judges. Everything that reaches a store, a secret or a bill is the deployment's:
where memory lives (`MEMALIGN_HOME`, `MEMALIGN_QDRANT_URL` and its key), the model and embeddings (a run
may pick only among `MEMALIGN_SERVED_MODELS` / `MEMALIGN_SERVED_EMBEDDINGS`), and the namespaces a run may
work in (`MEMALIGN_SERVED_NAMESPACES`; `@auth` makes it the identity LangGraph's custom auth gives the
caller). Models, embeddings and stores are opened on first use and shared by later runs.
"""

from __future__ import annotations

import atexit
import fnmatch
import importlib
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.runtime import Runtime
from pydantic import ValidationError

from memalign_graph.config import (
    episodic_store_location,
    open_episodic_store,
    resolve_chat_model,
    resolve_embeddings,
    served_embeddings,
    served_models,
    served_namespaces,
    structured_output_setting,
)
from memalign_graph.context import DEFAULT_NAMESPACE, FeedbackContext
from memalign_graph.errors import ConfigurationError, InvalidValueError
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.reader import run_checkpointer
from memalign_graph.resources import Resources
from memalign_graph.spec import JudgeSpec, check_identifier

JUDGE_HELP = (
    'context.judge: give the judge as a JudgeSpec object, e.g. {"name": "support_tone", '
    '"instructions": "Is the reply appropriate?", "output": {"kind": "boolean"}}'
)
FROM_AUTH = "@auth"


@dataclass(frozen=True)
class MemAlignSettings(FeedbackContext):
    """A run's judge, and the usual judging and alignment settings.

    `model` and `embeddings` may name only what the deployment allows (`MEMALIGN_SERVED_MODELS`,
    `MEMALIGN_SERVED_EMBEDDINGS`); unset, the deployment's own (`MEMALIGN_MODEL`, `MEMALIGN_EMBEDDINGS`).
    `home` and `qdrant_url` are refused: a served judge's memory lives where the deployment puts it, and
    the deployment's Qdrant key never goes to an address a caller chose.
    """

    judge: dict[str, Any] | None = None
    model: str | None = None
    embeddings: str | None = None
    home: str | None = None
    qdrant_url: str | None = None


class SettingsResolver:
    """Resolves a run's resources within what the deployment allows; opened once per process and shared."""

    def __call__(self, runtime: Runtime[Any]) -> Resources:
        settings = _settings(runtime)
        spec = _spec(json.dumps(settings.judge, sort_keys=True))
        model, embeddings, store = _shared(settings.model, settings.embeddings, episodic_store_location())
        return Resources(
            spec=spec,
            model=model,
            embeddings=embeddings,
            episodic_store=store,
            namespace=served_namespace(settings.namespace, user_identity(runtime)),
            structured_output=structured_output_setting(),
            memory_checkpointer=server_checkpointer() if _stateless_server_run(runtime) else None,
        )

    def ready(self, runtime: Runtime[Any]) -> bool:
        """Whether this run's models and stores are open already (then resolving is a lookup)."""
        settings = _settings(runtime)
        opened = (settings.model, settings.embeddings, episodic_store_location()) in _shared_cache
        return opened and (_server_saver is not None or not _stateless_server_run(runtime))


resources_from_settings = SettingsResolver()


def served_namespace(asked: str | None, identity: str | None) -> str:
    """The namespace a served run works in: the one it names (default `default`) if the deployment allows
    it, or, under `@auth`, the caller's identity (a run naming another is refused)."""
    allowed = served_namespaces()
    if FROM_AUTH in allowed:
        if identity is None:
            raise InvalidValueError(
                "namespace: this deployment takes the namespace from the caller's identity "
                "(MEMALIGN_SERVED_NAMESPACES=@auth), and this run has none; configure LangGraph custom auth."
            )
        namespace = check_identifier(identity, field="the caller's identity")
        if asked is not None and asked != namespace:
            raise InvalidValueError(
                f"context.namespace: {asked!r} is not yours; this deployment runs each caller in their own "
                f"namespace ({namespace!r}). Leave context.namespace out."
            )
        return namespace
    namespace = asked or DEFAULT_NAMESPACE
    if not any(fnmatch.fnmatchcase(namespace, pattern) for pattern in allowed):
        raise InvalidValueError(
            f"context.namespace: {namespace!r} is not served by this deployment; it serves "
            f"{', '.join(allowed)} (MEMALIGN_SERVED_NAMESPACES on the server)."
        )
    return namespace


def _stateless_server_run(runtime: Runtime[Any]) -> bool:
    """A run of the LangGraph server without a thread: the server lends it no checkpointer."""
    return getattr(runtime, "server_info", None) is not None and run_checkpointer() is None


def user_identity(runtime: Runtime[Any]) -> str | None:
    """The identity LangGraph's custom auth gave the caller, if the server has custom auth."""
    server = getattr(runtime, "server_info", None)
    user = getattr(server, "user", None)
    identity = getattr(user, "identity", None) if user is not None else None
    return str(identity) if identity else None


def _settings(runtime: Runtime[Any]) -> MemAlignSettings:
    settings = runtime.context
    if not isinstance(settings, MemAlignSettings) or not settings.judge:
        raise ConfigurationError(JUDGE_HELP)
    for name, where in (("home", "MEMALIGN_HOME"), ("qdrant_url", "MEMALIGN_QDRANT_URL")):
        if getattr(settings, name) is not None:
            raise InvalidValueError(
                f"context.{name}: a served judge's memory lives where the deployment puts it ({where} on the "
                f"server); a run cannot choose it. Leave context.{name} out."
            )
    for name, allowed, where in (
        ("model", served_models(), "MEMALIGN_SERVED_MODELS"),
        ("embeddings", served_embeddings(), "MEMALIGN_SERVED_EMBEDDINGS"),
    ):
        chosen = getattr(settings, name)
        if chosen is not None and chosen not in allowed:
            offered = f"it allows {', '.join(allowed)}" if allowed else "it allows no other"
            raise InvalidValueError(
                f"context.{name}: {chosen!r} is not one this deployment serves ({where} on the server; {offered}). "
                f"Leave context.{name} out for the deployment's own."
            )
    return settings


@lru_cache(maxsize=256)
def _spec(judge_json: str) -> JudgeSpec:
    try:
        return JudgeSpec.model_validate_json(judge_json)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise InvalidValueError(f"context.judge: {problems}. {JUDGE_HELP}") from None


_shared_lock = threading.Lock()
_shared_cache: dict[tuple[str | None, ...], tuple[Any, Any, EpisodicStore]] = {}
_server_saver: BaseCheckpointSaver[Any] | None = None


@atexit.register
def _close_shared() -> None:
    """Close the stores runs opened, so local Qdrant paths are released cleanly at exit."""
    with _shared_lock:
        for _model, _embeddings, store in _shared_cache.values():
            store.close()
        _shared_cache.clear()


def _shared(model: str | None, embeddings: str | None, location: str) -> tuple[Any, Any, Any]:
    key = (model, embeddings, location)
    with _shared_lock:
        if key not in _shared_cache:
            store = open_episodic_store()
            _shared_cache[key] = (resolve_chat_model(model), resolve_embeddings(embeddings), store)
        return _shared_cache[key]


def server_checkpointer() -> BaseCheckpointSaver[Any]:
    """The LangGraph server's own checkpointer, for a stateless run (the server gives those none, and the
    judge's memory thread is in it)."""
    global _server_saver
    with _shared_lock:
        if _server_saver is None:
            try:
                # The server's runtime edition (in memory, Postgres) answers under this one name.
                runtime_checkpoint = importlib.import_module("langgraph_runtime.checkpoint")
                _server_saver = runtime_checkpoint.Checkpointer()
            except Exception as error:  # noqa: BLE001 - any failure means: this server cannot lend it
                raise ConfigurationError(
                    "A stateless run cannot read the judge's memory on this server (its checkpointer is not "
                    f"reachable: {type(error).__name__}); run on a thread: client.threads.create()."
                ) from error
        return _server_saver
