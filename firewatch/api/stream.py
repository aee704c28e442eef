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

fastapi.sse rather than sse-starlette: it is FastAPI's own (nothing to add), documents the route
as text/event-stream in the OpenAPI schema, and gives typed events; its own 15 s ping is only a
backstop for ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from firewatch.api.auth import Principal, require
from firewatch.api.deps import State
from firewatch.api.errors import AUTH, responses
from firewatch.api.fanout import Full, Reset, Subscription
from firewatch.linkage.feed import parse_id
from firewatch.linkage.model import QueryError

router = APIRouter(prefix="/v1", tags=["stream"])
RETRY_MS = 2000  # how long a disconnected EventSource waits before it reconnects

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
    response_class=EventSourceResponse,
    summary="Every incident event and order change as server-sent events, in order",
    responses=responses(*AUTH, 400, streaming=True),
)
async def stream(
    api: State, caller: Reader, subscription: Subscribed, position: Start
) -> AsyncIterable[ServerSentEvent]:
    hub = api.hub
    team = caller.role.team  # a team's token: its own team's changes only
    catch_up = api.linkage.store.feed_since
    keepalive = api.settings.api_stream_keepalive
    try:
        yield ServerSentEvent(comment="firewatch change feed", retry=RETRY_MS)
        while not hub.closed:
            try:
                frames = await subscription.next_frames(position, catch_up, keepalive)
            except Reset as reset:
                position = hub.position
                yield ServerSentEvent(event="reset", data={"reason": str(reset)})
                continue
            if frames is None:
                yield ServerSentEvent(comment="keep-alive")
                continue
            for frame in frames:
                if team is None or frame.team == team:
                    yield ServerSentEvent(id=frame.id, event=frame.kind, raw_data=frame.data)
            if frames:
                position = frames[-1].id
    finally:
        subscription.leave()
