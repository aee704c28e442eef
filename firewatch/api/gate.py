"""The gate every request with a token passes: find the token and count the request against its
rate limit, in one script and one round trip on the API's asyncio client.

The token is found by its sha256 (tokens.py); the script then checks that the token's name still
maps to that digest (a revoked token, or a name given to a new token, is refused at once), and
only then counts; whether the count is within the limit is decided there too (one rule for both
scripts below). The lookup and the check compare digests, never the token, so their timing can
tell nothing about it.

A field team's ack and arrive (the hot path: benchmarks/README.md, API) go through the gate and
the transition in one script (`admit_and_apply`): the role the route checks comes from the
record this process saw for the token before (`known`: a record is written once under its
token's digest and never changed), and the script goes on only while Redis holds that same record
(`Stale` otherwise: the caller takes the two-step way, which refuses a revoked token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aredis

from firewatch.api import keys
from firewatch.api.ratelimit import RateLimiter, Verdict, Window
from firewatch.api.tokens import TokenRecord, digest
from firewatch.linkage import scripts
from firewatch.linkage.transitions import Transition

# admit(tokens, names, counter, digest, ttl_ms, limit): nil for an unknown or revoked token,
# else {record JSON, count with this request, 1 when the count is within the limit else 0}
_ADMIT_FN = """
local function admit(tokens, names, counter, digest, ttl, limit)
  local raw = redis.call('HGET', tokens, digest)
  if not raw then return nil end
  if redis.call('HGET', names, cjson.decode(raw).name) ~= digest then return nil end
  local n = redis.call('INCR', counter)
  if n == 1 then redis.call('PEXPIRE', counter, ttl) end
  return {raw, n, n <= tonumber(limit) and 1 or 0}
end
"""
# KEYS: tokens, token names, the window's counter; ARGV: digest, the counter's lifetime (ms),
# the limit. Returns false or admit's reply.
_ADMIT = _ADMIT_FN + "return admit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3]) or false"
# KEYS: the transition's (transitions.py), then tokens, token names, the window's counter; ARGV:
# the transition's, then digest, lifetime, limit, and the record JSON the caller knows. Returns
# {'stale'} when Redis does not hold that record under the digest (nothing counted or changed),
# false or admit's reply when refused, else admit's reply and the transition's.
_ADMIT_TRANSITION = (
    scripts.PRELUDE
    + _ADMIT_FN
    + "local function transition()\n"
    + scripts.TRANSITION_BODY
    + """end
local k, a = #KEYS, #ARGV
if redis.call('HGET', KEYS[k - 2], ARGV[a - 3]) ~= ARGV[a] then return {'stale'} end
local admitted = admit(KEYS[k - 2], KEYS[k - 1], KEYS[k], ARGV[a - 3], ARGV[a - 2], ARGV[a - 1])
if not admitted or admitted[3] == 0 then return admitted or false end
table.insert(admitted, transition())
return admitted
"""
)
KNOWN_MAX = 10_000  # token records kept in memory at most (forgotten all at once past it)


@dataclass(frozen=True)
class Admission:
    record: TokenRecord
    verdict: Verdict


class Stale(Exception):
    """Redis no longer holds the record this process knew for the token (revoked, or replaced):
    nothing was counted or changed."""


class Gate:
    def __init__(self, client: aredis.Redis, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self._admit = client.register_script(_ADMIT)
        self._admit_transition = client.register_script(_ADMIT_TRANSITION)
        self._known: dict[str, tuple[bytes, TokenRecord]] = {}  # digest -> record JSON, record

    def known(self, token: str) -> TokenRecord | None:
        """The record this process found for `token` before (no I/O): who is asking, as long as
        `admit_and_apply` finds it unchanged in Redis."""
        found = self._known.get(digest(token))
        return None if found is None else found[1]

    async def admit(self, token: str, now: datetime) -> Admission | None:
        """The token's record and its rate-limit verdict at `now`; None when the token is
        unknown or revoked (nothing counted)."""
        wanted = digest(token)
        window = self.limiter.window(wanted, now)
        return self._admission(
            wanted, window, await self._admit(keys=self._keys(window), args=self._args(window))
        )

    async def admit_and_apply(
        self, token: str, now: datetime, t: Transition, meta: str
    ) -> tuple[Admission | None, list[Any] | None]:
        """`admit`, and, when the token is admitted within its rate limit, transition `t` in the
        same script (`meta`: the store's layout, AsyncTransitions.meta_json): the admission and
        the transition's reply (None when refused). Stale when the token's record is not the one
        `known` gave (nothing counted or changed)."""
        wanted = digest(token)
        known = self._known.get(wanted)
        if known is None:
            raise Stale(f"no record known for token digest {wanted[:12]}")
        window = self.limiter.window(wanted, now)
        reply = await self._admit_transition(
            keys=[*t.keys(), *self._keys(window)],
            args=[*t.args(meta), *self._args(window), known[0]],
        )
        if reply and reply[0] == b"stale":
            self._known.pop(wanted, None)  # another request of the token may have done it
            raise Stale(f"the record of token digest {wanted[:12]} changed or was removed")
        return self._admission(wanted, window, reply), reply[3] if reply and reply[2] else None

    def _keys(self, window: Window) -> list[str]:
        return [keys.TOKENS, keys.TOKEN_NAMES, window.key]

    def _args(self, window: Window) -> list[str | int]:
        return [window.digest, window.ttl_ms, self.limiter.limit]

    def _admission(self, wanted: str, window: Window, reply: Any) -> Admission | None:
        if not reply:
            self._known.pop(wanted, None)
            return None
        raw, count, allowed = reply[:3]
        known = self._known.get(wanted)
        if known is None or known[0] != raw:
            if len(self._known) >= KNOWN_MAX:
                self._known.clear()
            known = self._known[wanted] = (raw, TokenRecord.model_validate_json(raw))
        return Admission(known[1], Verdict(bool(allowed), count, window.retry_after))
