"""A per-token request limit in Redis (a fixed window), so it holds across API processes.

Windows are numbered from the injected clock (epoch seconds // window), one counter per token and
window. The counting, and the verdict (the count, this request included, at most the limit), are
done by the script that finds the token (gate.py), in the same round trip: atomic, whichever
process answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from firewatch.api import keys


@dataclass(frozen=True)
class Window:
    digest: str  # the token's sha256
    key: str  # the token's counter for this window
    ttl_ms: int  # the counter's lifetime: it outlives the window, whatever the clock skew
    retry_after: int  # whole seconds until the next window (for Retry-After)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # requests of the token in this window, this one included
    retry_after: int


class RateLimiter:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s

    def window(self, digest: str, now: datetime) -> Window:
        """The window of the token whose sha256 is `digest` at `now`."""
        t = now.timestamp()
        n = math.floor(t / self.window_s)
        retry = max(1, math.ceil((n + 1) * self.window_s - t))
        return Window(digest, keys.rate(digest, n), math.ceil(self.window_s * 2000), retry)
