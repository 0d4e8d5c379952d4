"""The real llama-cpp-python OpenAI-compatible server with SmolLM2-135M-Instruct, for the real-model tier.

It is started the way a user starts it (`python -m llama_cpp.server --model FILE --host 127.0.0.1`) and
is ready when uvicorn says so on its output: the test waits for that line, not for a number of seconds.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SKIP_FLAG = "MEMALIGN_SKIP_REAL_MODEL"
REQUIRE_FLAG = "MEMALIGN_REQUIRE_REAL_MODEL"
READY_LINE = "Uvicorn running on"
# A bound on a failure, not a way to coordinate: a server that never says it is ready fails the tier.
START_LIMIT_SECONDS = 900


def require_real_model() -> Path:
    """The GGUF file, or a skip (the documented flag, or a missing extra) or a failure (when CI requires it)."""
    if os.environ.get(SKIP_FLAG) == "1":
        pytest.skip(f"the real-model tier is off ({SKIP_FLAG}=1)")
    from memalign_graph.local_model import smollm2_path

    try:
        missing = importlib.util.find_spec("llama_cpp") is None
        path = None if missing else smollm2_path()
    except Exception:  # noqa: BLE001 - reported below as the one thing to do
        missing, path = True, None
    if missing or path is None:
        message = (
            "the real-model tier needs the local-llm extra: pip install -e '.[local-llm]' "
            f"(it builds llama.cpp), or set {SKIP_FLAG}=1 to skip it"
        )
        if os.environ.get(REQUIRE_FLAG) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def llama_server(model: Path, log_path: Path, *, context_tokens: int = 8192) -> Iterator[str]:
    """Run the server on a free loopback port until the block ends; yield its OpenAI base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(context_tokens),
            "--verbose",
            "False",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    assert process.stdout is not None
    output = process.stdout

    def copy_output() -> None:
        with log_path.open("w") as log:
            for line in output:
                log.write(line)
                log.flush()
                if READY_LINE in line:
                    ready.set()
        ready.set()  # the server exited: stop waiting, the check below reports it

    reader = threading.Thread(target=copy_output, daemon=True)
    reader.start()
    try:
        if not ready.wait(START_LIMIT_SECONDS) or process.poll() is not None:
            raise RuntimeError("llama_cpp.server did not start:\n" + log_path.read_text()[-3000:])
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join()
