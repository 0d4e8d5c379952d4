"""Which local engine holds a memory folder's episodes, and moving them from Qdrant local mode to Qdrant's
embedded engine in place.

`auto` (the default): a folder whose episodes are on the embedded engine (`HOME/episodes-edge`) stays there;
a folder in local mode (`HOME/episodes`) stays in local mode until it holds more than the threshold, then
moves to the embedded engine the next time it is opened (when the `edge` extra is installed; otherwise a
warning names it); a new folder starts in local mode. `edge` moves a local-mode folder at once, whatever
its size; `local` refuses a folder already moved (export and import move it back).

The move copies every point as it is (id, unit vector, `{page_content, metadata}` payload) into
`episodes-edge.moving`, closes it, renames it to `episodes-edge` (the moment the move counts) and only
then deletes `HOME/episodes`, so a killed move leaves the folder in local mode, whole.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Literal

from memalign_graph.errors import ConfigurationError, EpisodicStoreError

Engine = Literal["local", "edge", "auto"]
ENGINES: tuple[Engine, ...] = ("local", "edge", "auto")
LOCAL_FOLDER = "episodes"
EDGE_FOLDER = "episodes-edge"
DEFAULT_EDGE_THRESHOLD = 10_000
EDGE_MISSING = (
    "Qdrant's embedded engine is not installed: pip install 'memalign-graph[edge]', or set "
    "MEMALIGN_EPISODIC_ENGINE=local."
)

logger = logging.getLogger(__name__)


def edge_installed() -> bool:
    return importlib.util.find_spec("qdrant_edge") is not None


def local_mode_points(folder: Path) -> int:
    """How many points Qdrant local mode holds under `folder`, read from its SQLite files without loading
    them (loading 100k points takes seconds and gigabytes)."""
    total = 0
    for storage in sorted(folder.glob("collection/*/storage.sqlite")):
        try:
            with closing(sqlite3.connect(f"file:{storage}?mode=ro", uri=True)) as connection:
                total += connection.execute("SELECT count(*) FROM points").fetchone()[0]
        except sqlite3.Error:
            continue  # a collection being created: counted next time
    return total


def choose_engine(home: Path, engine: Engine, threshold: int) -> Literal["local", "edge"]:
    """The engine a memory folder's episodes are opened with (see the module's docstring)."""
    edge, local = home / EDGE_FOLDER, home / LOCAL_FOLDER
    if engine == "local":
        if edge.exists() and not local.exists():
            raise ConfigurationError(
                f"MEMALIGN_EPISODIC_ENGINE=local, but the episodes under {home} are on Qdrant's embedded engine "
                f"({EDGE_FOLDER}): set MEMALIGN_EPISODIC_ENGINE=edge or auto, or move them back with "
                "`memalign memory export` and `memalign memory import`."
            )
        return "local"
    if engine == "edge":
        if not edge_installed():
            raise ConfigurationError(f"MEMALIGN_EPISODIC_ENGINE=edge: {EDGE_MISSING}")
        return "edge"
    if edge.exists():
        return "edge"
    if not local.exists():
        return "local"
    held = local_mode_points(local)
    if held <= threshold:
        return "local"
    if not edge_installed():
        logger.warning(
            "%s holds %s episodes in Qdrant local mode, past %s, where it gets slow to open and large in memory: "
            "pip install 'memalign-graph[edge]' and it moves to Qdrant's embedded engine when next opened.",
            local,
            f"{held:,}",
            f"{threshold:,}",
        )
        return "local"
    return "edge"


def move_local_to_edge(home: Path) -> int:
    """Copy a local-mode folder's episodes into the embedded engine's folder and delete the local copy.

    Returns how many points moved (0 when there was nothing to move). Refuses while this process has the
    local folder open (its client would be left on deleted files).
    """
    from memalign_graph.memory import qdrant_clients
    from memalign_graph.memory.edge_shards import recover

    local, edge = home / LOCAL_FOLDER, home / EDGE_FOLDER
    recover(edge)
    if edge.exists():
        shutil.rmtree(local, ignore_errors=True)  # a move killed after it counted, before its cleanup
        return 0
    if not local.exists():
        return 0
    if local.resolve() in qdrant_clients.open_local_paths():
        raise EpisodicStoreError(
            f"Cannot move the episodes in {local} to Qdrant's embedded engine while this process has them open "
            "in local mode: close the judges and stores using that memory folder first."
        )
    moving = home / (EDGE_FOLDER + ".moving")
    shutil.rmtree(moving, ignore_errors=True)
    moved = _copy_points(local, moving)
    moving.rename(edge)
    shutil.rmtree(local, ignore_errors=True)
    logger.info("Moved %s episodes from Qdrant local mode in %s to the embedded engine in %s.", moved, local, edge)
    return moved


def _copy_points(local: Path, target: Path) -> int:
    from qdrant_edge import Point

    from memalign_graph.memory.edge_store import DEFAULT_INDEX_AFTER, EdgeEpisodicStore
    from memalign_graph.memory.qdrant_clients import open_local_client

    client = open_local_client(local, "stop that process before its episodes move to Qdrant's embedded engine")
    moved = 0
    store = EdgeEpisodicStore(path=target, index_after=1 << 62)  # indexed once, at the end
    try:
        for collection in client.get_collections().collections:
            offset = None
            while True:
                page, offset = client.scroll(
                    collection.name, limit=1000, offset=offset, with_payload=True, with_vectors=True
                )
                if page:
                    vectors: list[list[float]] = [list(point.vector) for point in page]  # type: ignore[arg-type]
                    points = [Point(str(p.id), v, p.payload) for p, v in zip(page, vectors, strict=True)]
                    store.write_points(points, dimension=len(vectors[0]))
                    moved += len(points)
                if offset is None:
                    break
        if moved >= DEFAULT_INDEX_AFTER:
            store.optimize()  # once, so the first search after the move is fast
    finally:
        store.close()
        client.close()
    return moved
