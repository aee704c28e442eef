"""A real uvicorn server for an app, in a thread on a free port: for what TestClient cannot show
(event streams read as they arrive, a browser)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from firewatch.api.server import Server

from .test_health import closed_port


@contextmanager
def serving(app: FastAPI, timeout: float = 20.0) -> Iterator[str]:
    """The app on uvicorn at the URL this yields; stopped (event streams ended) at the end."""
    server = Server(app, "127.0.0.1", closed_port(), log_level="warning")
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test API server did not start")
        time.sleep(0.02)
    port = server.uvicorn.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(timeout)
        assert not thread.is_alive(), "the test API server did not stop"
