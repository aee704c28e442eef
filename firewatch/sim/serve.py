"""`firewatch demo` serving: the API and dashboard on the demo's Redis while the season plays.

The season stays in the main thread, synchronous as it is (its Redis client, its engine); the
API (api/server.py's uvicorn Server, on an app from api/app.py's create_app) runs its own event
loop in a background thread, on its own Redis client and on the season's PacedClock, so the
dashboard sees incidents open, teams acknowledge and close, and the rates move, in simulated
time. Ctrl-C or SIGTERM (a KeyboardInterrupt in the main thread) stops the season, then uvicorn;
the embedded Redis is left running for `firewatch redis stop`.

POST /v1/detections is refused (403): the season's engine is the only engine, and it is busy
in the season's thread, in event time ahead of the clock; a second engine would open incidents
of its own beside the season's and leave them to no simulated team. `firewatch api` takes
detections.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Literal

import redis
from fastapi import HTTPException

from firewatch.api.app import create_app
from firewatch.api.ingest import Intake
from firewatch.api.server import Server
from firewatch.api.tokens import TokenStore
from firewatch.clock import PacedClock, SystemClock
from firewatch.errors import FirewatchError
from firewatch.linkage.server import connect
from firewatch.linkage.service import Linkage
from firewatch.model import AnyDetection
from firewatch.settings import Settings
from firewatch.sim.defaults import DEMO_SPEED
from firewatch.sim.demo import DemoSeason, Prepared, prepare
from firewatch.sim.season import TAIL
from firewatch.sim.summary import SimFire
from firewatch.simulate import START

STARTUP_S = 15.0  # how long uvicorn may take to listen
STOP_S = 10.0  # how long it may take to stop

Say = Callable[[str], None]


@dataclass(frozen=True)
class Serving:
    """`firewatch demo`'s serving flags."""

    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port (the printed URL names it)
    speed: float = DEMO_SPEED
    exit_after_season: bool = False
    log_level: str = "warning"


class RefusedIntake:
    """The demo's sink for POST /v1/detections: refuses, saying why (see the module)."""

    destination: Literal["engine", "kafka"] = "engine"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, lines: Sequence[bytes], detections: Sequence[AnyDetection]) -> None:
        raise HTTPException(
            403,
            "`firewatch demo` takes no detections: its season's are simulated, and its engine "
            "is the season's; send detections to `firewatch api`",
        )


def serve_main(demo: DemoSeason, serving: Serving, say: Say) -> int:
    """`firewatch demo`: serve the API while the season plays at `serving.speed`; returns 0
    after the season (--exit-after-season) or Ctrl-C."""
    if not (serving.speed > 0 and math.isfinite(serving.speed)):
        raise FirewatchError(
            f"--speed is simulated seconds per wall second, above 0: not {serving.speed:g}"
        )
    prepared = prepare(demo)
    say(prepared.header())
    tokens = _tokens(prepared)
    clock = PacedClock(START, serving.speed)
    server = _start_api(prepared, clock, serving)
    main = threading.current_thread() is threading.main_thread()
    on_term = signal.signal(signal.SIGTERM, _interrupt) if main else None  # as on Ctrl-C
    try:
        say(_links(tokens, _base_url(server, serving)))
        days = (demo.days * 86400 + TAIL.total_seconds()) / 86400
        say(
            f"playing the season at {serving.speed:g}x (a wall second is "
            f"{_duration(serving.speed)} of simulated time): {days:g} simulated days "
            f"({demo.days:g}, and {TAIL.days} to close out) in about "
            f"{_duration(days * 86400 / serving.speed)}; Ctrl-C stops"
        )
        result = prepared.run(clock)
        timing = f"{prepared.timing(result)} (paced at {serving.speed:g}x)"
        written = prepared.write_metrics()
        say("\n".join([timing, "", result.render(), *([written] if written else [])]))
        if serving.exit_after_season:
            return 0
        say(f"\nthe season is over; still serving {_base_url(server, serving)} until Ctrl-C")
        while server.thread.is_alive():
            server.thread.join(0.5)
        raise FirewatchError("the API stopped by itself (uvicorn said why above)")
    except KeyboardInterrupt:
        say("\nstopping (Ctrl-C or SIGTERM)")
        return 0
    finally:
        if main:
            signal.signal(signal.SIGTERM, on_term)
        server.stop()
        prepared.client.close()
        say(
            f"stopped; the demo's Redis keeps running: `firewatch redis stop --redis-dir "
            f"{demo.redis_dir}` stops it"
            if demo.redis_url is None
            else "stopped"
        )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@dataclass
class _Running:
    server: Server
    thread: threading.Thread
    client: redis.Redis  # the API's own, to the season's Redis

    @property
    def port(self) -> int:
        sockets = self.server.uvicorn.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(STOP_S)
        self.client.close()


def _start_api(prepared: Prepared, clock: PacedClock, serving: Serving) -> _Running:
    """create_app on a client of its own to the season's Redis, uvicorn in a thread."""
    demo = prepared.demo
    settings = Settings(
        grid=demo.grid, rules=demo.rules, redis_url=demo.redis_url, redis_dir=demo.redis_dir
    )
    client = connect(demo.redis_url, demo.redis_dir)
    linkage = Linkage(client, prepared.routing, clock)
    intake = Intake(RefusedIntake(), prepared.engine.rules.sources.max_future)
    # /metrics: the season's metrics (engine, linkage queue) with the API's
    app = create_app(settings, linkage, clock, intake, registry=prepared.metrics.registry)
    server = Server(app, serving.host, serving.port, serving.log_level)
    thread = threading.Thread(target=server.run, name="firewatch-demo-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.stop()
            client.close()
            raise FirewatchError(
                f"the API could not listen on {serving.host}:{serving.port} (uvicorn said why "
                "above; another server on that port?): give another --port, or --no-serve"
            )
        time.sleep(0.02)
    return _Running(server, thread, client)


def _tokens(prepared: Prepared) -> list[tuple[str, str, str]]:
    """(label, what it is for, token): for the dashboard, the team of the season's first fire
    and admin, made in the season's (empty) database."""
    store = TokenStore(prepared.client)
    created = SystemClock().now().replace(microsecond=0)
    roles = [("dashboard", "dashboard", "read only")]
    fire = _first_fire(prepared)
    if fire is not None:
        what = f"{fire.team}'s phone: the season's first fire, {fire.start:%m-%d %H:%M}, is theirs"
        roles.append((f"team:{fire.team}", "team", what))
    roles.append(("admin", "admin", "every team's orders"))
    return [(label, what, store.add(role, f"demo-{label}", created)) for role, label, what in roles]


def _links(tokens: list[tuple[str, str, str]], base: str) -> str:
    """The page's URL with each token in its fragment."""
    lines = [
        f"serving {base}: open a link (the token is in its #fragment, which a browser never "
        "sends to a server); the links work until the next `firewatch demo`"
    ]
    lines += [f"  {label:<10} {base}#token={token}   ({what})" for label, what, token in tokens]
    return "\n".join(lines)


def _first_fire(prepared: Prepared) -> SimFire | None:
    """The season's first fire in a cell with a team: that team has the first warning."""
    fires = [f for e in prepared.episodes for f in e.fires if f.team]
    return min(fires, key=lambda f: f.start) if fires else None


def _base_url(server: _Running, serving: Serving) -> str:
    host = serving.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1" if host != "::" else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}/"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
