"""The dashboard: index.html at `/` and its files under `/static/` (static/: plain HTML, CSS and
ES modules, Leaflet vendored with its licence; no build step, no CDN).

The page talks only to the API (with the bearer token it is given) and the event stream. The one
thing put into the page here is the list of closed-loop causes (rules/routing.yaml), which the
phone view offers when a team closes an order as a false alarm."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from firewatch.api.deps import State

STATIC = Path(__file__).with_name("static")
CAUSES = "__CLOSED_LOOP_CAUSES__"
# everything from this origin, nothing inline or from elsewhere; images also as data: URLs
# (Leaflet's attribution flag); the API's answers are JSON read by fetch and EventSource
POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Static(StaticFiles):
    """Static files the browser revalidates (ETag) on every load, so an upgrade is seen at once."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Serve the dashboard at `/` and its files at `/static/` (neither in the OpenAPI document)."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    app.mount("/static", _Static(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index(api: State) -> HTMLResponse:
        closed_loop = api.linkage.routing.closed_loop
        causes = ",".join(closed_loop.causes) if closed_loop.enabled else ""
        return HTMLResponse(page.replace(CAUSES, html.escape(causes)), headers=HEADERS)
