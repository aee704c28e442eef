"""`firewatch demo`: a simulated Qujiang season end to end, printed or served.

prepare   simulate the season's stream (out/season.jsonl), load the engine, empty the
          demo's Redis database
--no-serve    run the season on a FakeClock as fast as it goes, print the report
(default)     serve the API and dashboard on that Redis (serve.py), play the season on a
              PacedClock at --speed, print the report, serve on until Ctrl-C
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from firewatch.clock import PacedClock
from firewatch.engine.core import Engine
from firewatch.errors import FirewatchError
from firewatch.linkage.server import connect
from firewatch.metrics import CollectorRegistry, EngineMetrics, LinkageMetrics, write_snapshot
from firewatch.rules.model import RoutingRules
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.sim.defaults import (
    DEMO_BATCH_SIZE,
    DEMO_DAYS,
    DEMO_FIRES,
    DEMO_REDIS_DIR,
    DEMO_SEED,
    DEMO_SENSORS,
)
from firewatch.sim.season import SeasonMetrics, SeasonResult, run_season, write_season
from firewatch.simulate import START, SimSummary


@dataclass(frozen=True)
class DemoSeason:
    """What `firewatch demo` plays: its flags, less those of serving."""

    grid: Path
    rules: Path
    redis_url: str | None
    redis_dir: Path
    out_dir: Path
    seed: int = DEMO_SEED
    days: float = DEMO_DAYS
    fires: int = DEMO_FIRES
    sensors: int = DEMO_SENSORS
    metrics_out: Path | None = None  # the season's metrics, written when it is over


@dataclass
class Prepared:
    """A season ready to run: its stream written, its engine loaded, its Redis database empty."""

    demo: DemoSeason
    stream: Path
    episodes: list[SimSummary]
    engine: Engine
    routing: RoutingRules
    client: redis.Redis
    where: str  # the Redis database, in words
    simulate_s: float
    setup_s: float
    # the season's metrics (engine, linkage queue; served by the API with its own, while serving)
    metrics: SeasonMetrics

    def header(self) -> str:
        d = self.demo
        lines = sum(e.lines for e in self.episodes)
        return "\n".join(
            [
                f"season: {d.days:g} days from {START:%Y-%m-%d}, {d.fires} fires, {d.sensors} "
                f"sensors, seed {d.seed}: {self.stream} ({lines:,} lines, simulated in "
                f"{len(self.episodes)} episodes)",
                f"redis:  {self.where}",
            ]
        )

    def run(self, pace: PacedClock | None = None) -> SeasonResult:
        """The season (season.run_season): as fast as it goes, or at the pace of `pace`."""
        seed = self.demo.seed
        return run_season(
            self.stream,
            self.engine,
            self.client,
            self.routing,
            seed,
            DEMO_BATCH_SIZE,
            pace,
            metrics=self.metrics,
        )

    def write_metrics(self) -> str | None:
        """The metrics snapshot to --metrics-out, if given: where it went, in words."""
        path = self.demo.metrics_out
        if path is None:
            return None
        write_snapshot(self.metrics.registry, path)
        return f"metrics: {path}"

    def timing(self, result: SeasonResult) -> str:
        return (
            f"time:   simulate {self.simulate_s:.1f} s, engine and Redis set-up "
            f"{self.setup_s:.1f} s, season {result.seconds:.1f} s"
        )


def prepare(demo: DemoSeason) -> Prepared:
    """Simulate the stream, open the engine and an empty Redis database for the season.

    Redis: with no URL, the embedded server of `redis_dir`, which must be the demo's own
    (DEMO_REDIS_DIR): its database is emptied (FLUSHDB) first, so the demo can be run again.
    With a URL, the database must be empty: the demo never deletes data it did not make.
    """
    if demo.redis_url is None and demo.redis_dir.resolve() == Settings().redis_dir.resolve():
        raise FirewatchError(
            f"{demo.redis_dir} is the dispatch queue's own Redis folder, and the demo empties the "
            f"database it uses: give the demo its own folder, e.g. {DEMO_REDIS_DIR}"
        )
    stream = demo.out_dir / "season.jsonl"
    t0 = time.perf_counter()
    episodes = write_season(
        stream, demo.grid, seed=demo.seed, days=demo.days, fires=demo.fires, sensors=demo.sensors
    )
    t1 = time.perf_counter()
    engine = open_engine(Settings(grid=demo.grid, rules=demo.rules))
    routing = engine.rules.routing
    if routing is None:
        raise FirewatchError(f"{demo.rules}: no `routing` section: the linkage queue needs one")
    client = connect(demo.redis_url, demo.redis_dir)
    where = _fresh_database(client, demo.redis_url, demo.redis_dir)
    registry = CollectorRegistry()
    metrics = SeasonMetrics(registry, EngineMetrics(registry), LinkageMetrics(registry))
    return Prepared(
        demo,
        stream,
        episodes,
        engine,
        routing,
        client,
        where,
        t1 - t0,
        time.perf_counter() - t1,
        metrics,
    )


def season_main(demo: DemoSeason) -> str:
    """`firewatch demo --no-serve`: simulate a season, run it end to end as fast as it goes,
    return the rendered result."""
    prepared = prepare(demo)
    try:
        result = prepared.run()
        written = prepared.write_metrics()
    finally:
        prepared.client.close()
    lines = [prepared.header(), prepared.timing(result), "", result.render()]
    return "\n".join(lines + ([written] if written else []))


def _fresh_database(client: redis.Redis, url: str | None, redis_dir: Path) -> str:
    if url is None:
        client.flushdb()
        return (
            f"the demo's own embedded server in {redis_dir}, emptied (FLUSHDB) before this run; "
            f"inspect it with FIREWATCH_REDIS_DIR={redis_dir}"
        )
    r: Any = client  # redis-py's return types are unions of its sync and async clients
    size = int(r.dbsize())
    shown = _without_password(url)
    if size:
        raise FirewatchError(
            f"the demo needs an empty Redis database and {shown} holds {size:,} keys: give an "
            f"empty one (e.g. a spare database number, redis://host:6379/15) or leave out the "
            f"URL to use the demo's own embedded server in {DEMO_REDIS_DIR}"
        )
    return f"{shown} (an empty database)"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
