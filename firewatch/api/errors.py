"""Exceptions to HTTP answers, and the error responses routes declare in the OpenAPI document.

Every error answer is `{"detail": "..."}` naming what is at fault (FastAPI's own 422 aside)."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from firewatch.api.schemas import ErrorOut
from firewatch.linkage.aggregates import LayoutError
from firewatch.linkage.model import DispatchError, InvalidTransition, OrderNotFound
from firewatch.linkage.transitions import OrderForbidden
from firewatch.stream.topics import KafkaError

_DESCRIPTIONS = {
    400: "The request is not understood (the detail names the parameter or body at fault)",
    401: "Missing, unknown or revoked bearer token",
    403: "The token's role may not do this, or the order belongs to another team",
    404: "No such dispatch order",
    409: "The transition is not allowed in the order's state: nothing changed",
    413: "The body is larger than the API accepts (FIREWATCH_API_MAX_BODY_BYTES)",
    415: "The body's Content-Type is not one the route reads",
    429: "Too many requests with this token: retry after Retry-After seconds",
    500: "Stored data this firewatch cannot read (the detail names the key)",
    503: "Redis (or the Kafka broker) does not answer",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
}
AUTH = (401, 403, 429, 503)  # what any route with a token may answer


def responses(*codes: int, streaming: bool = False) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: these status codes with ErrorOut bodies. `streaming`: the
    route answers text/event-stream, but its errors are JSON all the same."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted(set(codes)):
        out[code] = {"model": ErrorOut, "description": _DESCRIPTIONS[code]}
        if streaming:
            ref = {"$ref": "#/components/schemas/ErrorOut"}
            out[code]["content"] = {"application/json": {"schema": ref}}
        if code in _HEADERS:
            out[code]["headers"] = _HEADERS[code]
    return out


def _answer(status: int) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handler


def _unreachable(what: str) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        detail = f"{what} unreachable: {exc}"
        return JSONResponse({"detail": detail}, status_code=503)

    return handler


def install(app: FastAPI) -> None:
    """Map the errors the linkage and the ingest path raise on purpose to their status codes."""
    app.add_exception_handler(OrderNotFound, _answer(404))
    app.add_exception_handler(InvalidTransition, _answer(409))
    app.add_exception_handler(OrderForbidden, _answer(403))
    app.add_exception_handler(DispatchError, _answer(400))
    app.add_exception_handler(LayoutError, _answer(500))
    app.add_exception_handler(redis.ConnectionError, _unreachable("Redis"))
    app.add_exception_handler(redis.TimeoutError, _unreachable("Redis"))
    app.add_exception_handler(KafkaError, _unreachable("Kafka"))
