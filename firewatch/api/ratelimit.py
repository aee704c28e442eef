"""A per-token request limit in Redis (a fixed window), so it holds across API processes.

Windows are numbered from the injected clock (epoch seconds // window), one counter per token and
window, counted and given its expiry by one script: atomic, whichever process answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import redis

from firewatch.api import keys

# KEYS: the window's counter; ARGV: its lifetime in ms. Returns the count including this request.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # requests of the token in this window, this one included
    retry_after: int  # whole seconds until the next window (for Retry-After)


class RateLimiter:
    def __init__(self, client: redis.Redis, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hit = client.register_script(_HIT)

    def hit(self, digest: str, now: datetime) -> Verdict:
        """Count one request of the token whose sha256 is `digest` at `now`."""
        t = now.timestamp()
        window = math.floor(t / self.window_s)
        ttl_ms = math.ceil(self.window_s * 2000)  # outlives the window, whatever the clock skew
        count = int(self._hit(keys=[keys.rate(digest, window)], args=[ttl_ms]))
        retry = max(1, math.ceil((window + 1) * self.window_s - t))
        return Verdict(count <= self.limit, count, retry)
