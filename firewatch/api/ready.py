"""What /readyz asks: Redis answers a PING, and the Kafka broker a metadata request when the API
sends detections there; each within a short timeout, so a hung dependency cannot hang the probe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
from starlette.concurrency import run_in_threadpool

from firewatch.api.schemas import CheckOut

Probe = Callable[[], Awaitable[str]]  # returns what answered; raises when it is down


@dataclass(frozen=True)
class Readiness:
    probes: dict[str, Probe]
    timeout: float

    async def check(self) -> list[CheckOut]:
        return list(await asyncio.gather(*(self._one(n, p) for n, p in self.probes.items())))

    async def _one(self, name: str, probe: Probe) -> CheckOut:
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: it can lose a cancel on 3.11
                detail = await probe()
        except TimeoutError:
            return CheckOut(name=name, ok=False, detail=f"no answer within {self.timeout:g} s")
        except Exception as exc:  # any failure of the probe is the answer: down, and why
            return CheckOut(name=name, ok=False, detail=f"{type(exc).__name__}: {exc}")
        return CheckOut(name=name, ok=True, detail=detail)


def redis_probe(client: redis.Redis) -> Probe:
    r: Any = client

    async def probe() -> str:
        await run_in_threadpool(r.ping)
        kwargs = r.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        return f"PING answered by {where}"

    return probe
