"""A test client for text/event-stream: frames parsed as the server sends them, read in a thread
so a test waits for them with a deadline."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from types import TracebackType

import httpx2 as httpx


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class EventStream:
    """GET `url` with `headers`; `.status` once connected; `.next(timeout)` the next frame."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._frames: queue.Queue[Frame | BaseException | None] = queue.Queue()
        self._request = self._client.build_request("GET", url, headers=headers)
        self._response = self._client.send(self._request, stream=True)
        self.status = self._response.status_code
        self.headers = self._response.headers
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()
        else:
            self.body = self._response.read()

    def _read(self) -> None:
        frame = Frame()
        try:
            for line in self._response.iter_lines():
                if line == "":
                    self._frames.put(frame)
                    frame = Frame()
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    frame.comments.append(value)
                elif name == "data":
                    frame.data.append(value)
                elif name == "id":
                    frame.id = value
                elif name == "event":
                    frame.event = value
                elif name == "retry":
                    frame.retry = int(value)
            self._frames.put(None)
        except BaseException as exc:  # the stream closed under us: said to the waiting test
            self._frames.put(exc)

    def next(self, timeout: float = 5.0) -> Frame | None:
        """The next frame; None when the server ended the stream. queue.Empty on timeout."""
        got = self._frames.get(timeout=timeout)
        if isinstance(got, BaseException):
            return None
        return got

    def events(self, n: int, timeout: float = 5.0) -> list[Frame]:
        """The next `n` frames that carry an id (keep-alives and comments skipped)."""
        out: list[Frame] = []
        while len(out) < n:
            frame = self.next(timeout)
            assert frame is not None, f"the stream ended after {len(out)} of {n} events"
            if frame.id is not None:
                out.append(frame)
        return out

    def close(self) -> None:
        self._response.close()
        self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
