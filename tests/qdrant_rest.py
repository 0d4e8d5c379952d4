"""A test double of Qdrant's REST API, served over qdrant-client's own local engine.

This is not Qdrant. It answers the few REST routes that `QdrantClient(url=...)` and
`AsyncQdrantClient(url=...)` call for the episodic store, parsing each body with the client's own
pydantic models and running it on an in-memory `QdrantLocal`. It proves our HTTP and async client
paths (request building, response parsing, api keys, connections and event loops), not Qdrant
server semantics: local mode searches exhaustively, and the tenant payload indexes the shared
layout creates are accepted but not used. Run the contract against a real server with QDRANT_URL.
"""

from __future__ import annotations

import hmac
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from pydantic import BaseModel, TypeAdapter, ValidationError
from qdrant_client.http import models
from qdrant_client.local.qdrant_local import QdrantLocal
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

Handler = Callable[[Request, QdrantLocal], Awaitable[Any]]

# Qdrant serves these without a key (its api_key_whitelist); every other route needs one.
_OPEN_PATHS = {"/", "/healthz"}


def _json(value: Any) -> Any:
    """A result as Qdrant writes it: no null fields, payload values kept as they are."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    return value


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=status)


async def _body(request: Request, model: Any) -> Any:
    """The body parsed by the model qdrant-client builds it from (a type or a union)."""
    return TypeAdapter(model).validate_json(await request.body())


def _collection(request: Request) -> str:
    return request.path_params["collection_name"]


async def list_collections(request: Request, engine: QdrantLocal) -> Any:
    return engine.get_collections()


async def collection_exists(request: Request, engine: QdrantLocal) -> Any:
    return models.CollectionExistence(exists=engine.collection_exists(_collection(request)))


async def get_collection(request: Request, engine: QdrantLocal) -> Any:
    info = engine.get_collection(_collection(request))
    asked = _hnsw_asked.get((id(engine), _collection(request)))
    if asked is not None:  # local mode has no HNSW: report what the collection was created with, as a server does
        info.config.hnsw_config = info.config.hnsw_config.model_copy(update=asked.model_dump(exclude_none=True))
    return info


_hnsw_asked: dict[tuple[int, str], models.HnswConfigDiff] = {}


async def create_collection(request: Request, engine: QdrantLocal) -> Any:
    body = await _body(request, models.CreateCollection)
    if body.hnsw_config is not None:
        _hnsw_asked[(id(engine), _collection(request))] = body.hnsw_config
    return engine.create_collection(
        _collection(request),
        vectors_config=body.vectors,
        sparse_vectors_config=body.sparse_vectors,
        metadata=body.metadata,
    )


async def delete_collection(request: Request, engine: QdrantLocal) -> Any:
    return engine.delete_collection(_collection(request))


async def create_payload_index(request: Request, engine: QdrantLocal) -> Any:
    body = await _body(request, models.CreateFieldIndex)
    return engine.create_payload_index(_collection(request), body.field_name, field_schema=body.field_schema)


async def upsert_points(request: Request, engine: QdrantLocal) -> Any:
    body = await _body(request, models.PointInsertOperations)
    points = body.points if isinstance(body, models.PointsList) else body.batch
    return engine.upsert(_collection(request), points, update_filter=body.update_filter)


async def delete_points(request: Request, engine: QdrantLocal) -> Any:
    return engine.delete(_collection(request), await _body(request, models.PointsSelector))


async def query_points(request: Request, engine: QdrantLocal) -> Any:
    [response] = engine.query_batch_points(_collection(request), [await _body(request, models.QueryRequest)])
    return response


async def scroll_points(request: Request, engine: QdrantLocal) -> Any:
    body = await _body(request, models.ScrollRequest)
    points, next_offset = engine.scroll(
        _collection(request),
        scroll_filter=body.filter,
        limit=body.limit if body.limit is not None else 10,
        order_by=body.order_by,
        offset=body.offset,
        with_payload=body.with_payload if body.with_payload is not None else True,
        with_vectors=body.with_vector if body.with_vector is not None else False,
    )
    return models.ScrollResult(points=points, next_page_offset=next_offset)


async def count_points(request: Request, engine: QdrantLocal) -> Any:
    body = await _body(request, models.CountRequest)
    return engine.count(_collection(request), count_filter=body.filter)


def _route(path: str, method: str, handler: Handler, engine: QdrantLocal) -> Route:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request, engine)
        except ValidationError as error:
            return _error(400, f"Format error in JSON body: {error}")
        except ValueError as error:  # what local mode raises for a missing collection or a bad request
            return _error(404 if "not found" in str(error).lower() else 400, str(error))
        return JSONResponse({"result": _json(result), "status": "ok", "time": 0.0})

    return Route(path, endpoint, methods=[method])


class _ApiKey(BaseHTTPMiddleware):
    def __init__(self, app: Any, api_key: str) -> None:
        super().__init__(app)
        self.api_key = api_key

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path in _OPEN_PATHS:
            return await call_next(request)
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        given = request.headers.get("api-key") or bearer
        if not given:
            return PlainTextResponse("Must provide an API key or an Authorization bearer token", status_code=401)
        if not hmac.compare_digest(given, self.api_key):
            return PlainTextResponse("Invalid API key or JWT", status_code=403)
        return await call_next(request)


def create_app(*, api_key: str | None = None) -> Starlette:
    """The REST subset the episodic store uses, over a fresh in-memory local engine."""
    engine = QdrantLocal(":memory:")
    one = "/collections/{collection_name}"

    async def root(request: Request) -> Response:  # async: Starlette runs a sync endpoint in a worker thread
        return JSONResponse(_json(engine.info()))

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("healthz check passed")

    routes = [
        Route("/", root, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        _route("/collections", "GET", list_collections, engine),
        _route(f"{one}/exists", "GET", collection_exists, engine),
        _route(one, "GET", get_collection, engine),
        _route(one, "PUT", create_collection, engine),
        _route(one, "DELETE", delete_collection, engine),
        _route(f"{one}/index", "PUT", create_payload_index, engine),
        _route(f"{one}/points", "PUT", upsert_points, engine),
        _route(f"{one}/points/delete", "POST", delete_points, engine),
        _route(f"{one}/points/query", "POST", query_points, engine),
        _route(f"{one}/points/scroll", "POST", scroll_points, engine),
        _route(f"{one}/points/count", "POST", count_points, engine),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"Not found: {request.method} {request.url.path} is not served by this test double")

    middleware = [Middleware(_ApiKey, api_key=api_key)] if api_key else []
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found})


@contextmanager
def running_qdrant_rest(api_key: str | None = None) -> Iterator[str]:
    """Serve the double on 127.0.0.1 at a free port until the block ends; yields its URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(api_key=api_key), log_level="warning", lifespan="off", loop="asyncio", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="qdrant-rest-double")
    thread.start()
    try:
        deadline = time.monotonic() + 300  # a bound on a start that hangs, not a timing assumption
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Qdrant REST double did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        listener.close()
