"""Where a result came from: the library (version, and the git commit when run from a checkout), the
models, the data file, the settings and the time, so a table in a report can be traced and re-run."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from memalign_graph.fake_model import FakeEmbeddings

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
GENERIC_FOLDERS = {"model", "models", "snapshots", "weights", "site-packages", "/"}


def provenance(*, model: str, embeddings: Embeddings, source: str) -> dict[str, Any]:
    """The facts a reader needs to trust or repeat a run; the data file by name and content hash, never by path."""
    return {
        "library": "memalign-graph",
        "library_version": library_version(),
        "git_commit": git_commit(),
        "model": model,
        "embedding_model": describe_embeddings(embeddings),
        "data_file": Path(source).name if source else None,
        "data_sha256": _file_hash(source),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "dependencies": {name: _version(name) for name in ("langgraph", "langchain-core", "qdrant-client", "numpy")},
    }


def library_version() -> str:
    return _version("memalign-graph") or "unknown"


def git_commit() -> str | None:
    """The commit of the checkout the package runs from (with '-dirty' for uncommitted changes); None when
    it is installed from a wheel or git is unavailable."""
    if not (PACKAGE_ROOT / ".git").exists():
        return None
    try:
        sha = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "memalign_graph")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def describe_embeddings(embeddings: Embeddings) -> str:
    """The embedding model by its class and, where it says, its model name (all-MiniLM-L6-v2, ...)."""
    name = next(
        (
            str(value)
            for attribute in ("model_name", "model", "model_id", "deployment")
            if isinstance(value := getattr(embeddings, attribute, None), str) and value
        ),
        None,
    )
    kind = type(embeddings).__name__
    if isinstance(embeddings, FakeEmbeddings):
        return "fake (FAKE EMBEDDINGS: hashed bag of words, not a real embedding model)"
    if name and ("/" in name or "\\" in name):  # local weights: named by their folder, never by the path
        parts = [part for part in Path(name).parts if part.lower() not in GENERIC_FOLDERS and len(part) < 40]
        name = f"{parts[-1]}, local weights" if parts else "local weights"
    return f"{kind} ({name})" if name else kind


def _git(*arguments: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(PACKAGE_ROOT), *arguments], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _file_hash(source: str) -> str | None:
    path = Path(source) if source else None
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
