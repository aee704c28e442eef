"""GET /v1/stream: the change feed as server-sent events, for the dashboard.

Every incident event and every order change, in the order they happened (fanout.py: one reader
of the Redis Stream per process, fanned out). Each event's `id` is its feed entry id and its
`event` is `incident` or `order`; `data` is the entry's fields (linkage/feed.py) as JSON; a
team's token receives its own team's changes only. A client reconnecting with `Last-Event-ID`
(EventSource does so by itself) gets exactly what came after that id; a new client starts from
`?after=<id>` (GET /v1/whoami's `feed_id`, read before loading its lists, so nothing falls
between) or from now. `reset` (no id) says the feed lost the client's place: reload and go on.
Keep-alive comments (no id) every FIREWATCH_API_STREAM_KEEPALIVE seconds find dead connections.
At FIREWATCH_API_STREAM_MAX subscribers, 503.

Built on FastAPI's own fastapi.sse rather than sse-starlette (nothing to add): its encoder writes
every frame (fanout.sse). The route returns its response itself instead of yielding events one by
one to FastAPI: that per-event machinery (two tasks, two memory streams and a keep-alive timer per
event and subscriber) cost about 0.55 ms of CPU per event and subscriber, while here the hub
encodes each frame once and a subscriber's frames go out in one write (benchmarks/README.md, API).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query
from starlette.responses import StreamingResponse

from firewatch.api.auth import Principal, require
from firewatch.api.deps import ApiState, State
from firewatch.api.errors import AUTH, responses
from firewatch.api.fanout import Full, Reset, Subscription, sse
from firewatch.linkage.feed import parse_id
from firewatch.linkage.model import QueryError

router = APIRouter(prefix="/v1", tags=["stream"])
RETRY_MS = 2000  # how long a disconnected EventSource waits before it reconnects
OPENING = sse(comment="firewatch change feed", retry=RETRY_MS)
KEEPALIVE = sse(comment="keep-alive")
# no caching, and no buffering by a proxy in front (nginx reads X-Accel-Buffering)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStreamResponse(StreamingResponse):
    """text/event-stream written as it comes. Not fastapi.sse's EventSourceResponse: FastAPI
    treats a route declaring that one as a generator of events, which this route is not."""

    media_type = "text/event-stream"


Reader = Annotated[Principal, Depends(require("dashboard", "team"))]


def subscribe(api: State, _: Reader) -> Iterator[Subscription]:
    """A place among the hub's subscribers (503 when it is full), given back at the end."""
    try:
        subscription = api.hub.join()
    except Full as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    try:
        yield subscription
    finally:
        subscription.leave()


Subscribed = Annotated[Subscription, Depends(subscribe)]


def start_position(
    api: State,
    after: Annotated[
        str | None,
        Query(
            description="a change feed entry id (`<ms>-<seq>`): events after it; default: from now"
        ),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(description="set by EventSource on reconnect")
    ] = None,
) -> str:
    """Where the stream starts: Last-Event-ID (a reconnect), else `after`, else now."""
    position = last_event_id or after
    if position is None:
        return api.hub.position
    try:
        parse_id(position)
    except QueryError as exc:
        which = "Last-Event-ID" if last_event_id else "after"
        raise HTTPException(400, f"{which}: {exc}") from None
    return position


Start = Annotated[str, Depends(start_position)]


@router.get(
    "/stream",
    response_class=EventStreamResponse,
    summary="Every incident event and order change as server-sent events, in order",
    responses=responses(*AUTH, 400, streaming=True),
)
async def stream(
    api: State, caller: Reader, subscription: Subscribed, position: Start
) -> EventStreamResponse:
    frames = _events(api, caller.role.team, subscription, position)
    return EventStreamResponse(frames, headers=HEADERS)


async def _events(
    api: ApiState, team: str | None, subscription: Subscription, position: str
) -> AsyncIterator[bytes]:
    """The stream's bytes: the opening comment, then what follows `position`, each wake's frames
    in one write (a team's token: its own team's only), keep-alives, resets."""
    hub = api.hub
    keepalive = api.settings.api_stream_keepalive
    try:
        yield OPENING
        while not hub.closed:
            try:
                frames = await subscription.next_frames(position, keepalive)
            except Reset as reset:
                position = hub.position
                yield sse(event="reset", data=orjson.dumps({"reason": str(reset)}).decode())
                continue
            if frames is None:
                yield KEEPALIVE
                continue
            if frames:
                position = frames[-1].id
                wire = b"".join(f.wire for f in frames if team is None or f.team == team)
                if wire:
                    yield wire
    finally:
        subscription.leave()
