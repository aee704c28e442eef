"""The gate every request with a token passes: find the token and count the request against its
rate limit, in one script and one round trip on the API's asyncio client.

The token is found by its sha256 (tokens.py); the script then checks that the token's name still
maps to that digest (a revoked token, or a name given to a new token, is refused at once), and
only then counts. The lookup and the check compare digests, never the token, so their timing can
tell nothing about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aredis

from firewatch.api import keys
from firewatch.api.ratelimit import RateLimiter, Verdict
from firewatch.api.tokens import TokenRecord, digest

# KEYS: tokens, token names, the window's counter; ARGV: digest, the counter's lifetime (ms).
# Returns false for an unknown or revoked token, else {record JSON, count with this request}.
_ADMIT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
if redis.call('HGET', KEYS[2], cjson.decode(raw).name) ~= ARGV[1] then return false end
local n = redis.call('INCR', KEYS[3])
if n == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return {raw, n}
"""


@dataclass(frozen=True)
class Admission:
    record: TokenRecord
    verdict: Verdict


class Gate:
    def __init__(self, client: aredis.Redis, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self._admit = client.register_script(_ADMIT)

    async def admit(self, token: str, now: datetime) -> Admission | None:
        """The token's record and its rate-limit verdict at `now`; None when the token is
        unknown or revoked (nothing counted)."""
        wanted = digest(token)
        window = self.limiter.window(wanted, now)
        found = await self._admit(
            keys=[keys.TOKENS, keys.TOKEN_NAMES, window.key], args=[wanted, window.ttl_ms]
        )
        if not found:
            return None
        raw, count = found
        return Admission(TokenRecord.model_validate_json(raw), self.limiter.verdict(window, count))
