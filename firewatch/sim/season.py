"""The end-to-end dispatch demo: a simulated fire season, engine to field teams, in simulated time.

One in-process pipeline that calls the one implementation of each step:

    stream file --read_batches--> Engine.process --incident events--> LinkageConsumer.deliver
        --> dispatch orders in Redis <-- TeamSimulator (ack / arrive / close) and escalation
        false-alarm closures --MaskSync--> suppression masks in the engine (the closed loop)

A FakeClock follows event time. Before an incident event is delivered, simulated time moves to
max(now, the event's observed_at); after each batch it moves to the batch's watermark (latest
observed_at minus the engine's grace period), so teams act and masks reach the engine while the
stream is quiet too. Time never ticks: it jumps to the earliest of the target, the next team
action and the next SLA deadline, runs what is due there, and jumps again. After the stream the
season runs on for three days so late closures and escalations play out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.errors import FirewatchError
from firewatch.ingest.files import read_batches
from firewatch.linkage.consumer import LinkageConsumer, MaskSync
from firewatch.linkage.report import Report, Row
from firewatch.linkage.server import connect
from firewatch.linkage.service import Linkage
from firewatch.linkage.store import DispatchCounts, order_id
from firewatch.model import EventKind, IncidentEvent
from firewatch.rules.model import RoutingRules
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.sim.teams import TeamSimulator
from firewatch.simulate import START, SimSummary, write_stream

TAIL = timedelta(days=3)  # simulated time after the last event: late closures, escalations
LOOP_MASK_PREFIX = "false-alarm-"  # names of masks made by false-alarm closures (Linkage.mask_for)
EPISODE_FIRES = 40  # the season is simulated in episodes of this many fires (write_season)
# `firewatch demo` / `make demo`: 268 warnings in 20-29 s here, most of it escalation steps.
DEMO_SEED, DEMO_DAYS, DEMO_FIRES, DEMO_SENSORS = 1, 10.0, 330, 30
DEMO_BATCH_SIZE = 500  # about 2 h of the demo stream: masks reach the engine within a batch
DEMO_REDIS_DIR = Path("var/demo-redis")  # the demo's own embedded Redis, emptied at every run
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class SeasonResult:
    stream: str
    records: int
    rejected: int
    incidents_opened: int
    incidents_closed: int
    incidents_open: int  # still open when the stream ended
    dispatch: DispatchCounts
    opened: list[str]  # incident ids of `opened` events, in delivery order
    team_actions: int
    invalid_actions: int
    escalations: int  # escalation steps (an order escalated three times counts three)
    masks_created: int
    suppressed_by_loop: int  # detections suppressed by masks of false-alarm closures
    report: Report
    seconds: float = 0.0

    @property
    def overall(self) -> Row:
        return self.report.rows[0]

    def headline(self) -> str:
        r = self.overall
        p50 = "-" if r.to_ack_p50 is None else f"{r.to_ack_p50 / 60:.0f} min"
        return (
            f"{r.issued:,} warnings issued, {r.acknowledged:,} acknowledged "
            f"({_pct(r.response_rate)} response rate), {r.closed:,} closed "
            f"({_pct(r.closure_rate)}), {r.escalated:,} escalated, "
            f"p50 time to acknowledge {p50}"
        )

    def render(self) -> str:
        d = self.dispatch
        return "\n".join(
            [
                self.headline(),
                f"  engine    {self.records:,} records ({self.rejected:,} rejected), "
                f"{self.incidents_opened:,} incidents opened, {self.incidents_closed:,} closed, "
                f"{self.incidents_open:,} still open",
                f"  dispatch  {d.created:,} orders, {d.renotified:,} re-notified on a severity "
                f"rise, {d.incident_closed:,} incidents closed by the engine, "
                f"{self.escalations:,} escalation steps",
                f"  teams     {self.team_actions:,} actions, {self.invalid_actions:,} refused "
                f"(e.g. acknowledging an order the escalated level had closed)",
                f"  loop      {self.masks_created:,} suppression masks from false-alarm closures, "
                f"{self.suppressed_by_loop:,} later detections suppressed by them",
                "",
                self.report.render(),
            ]
        )


@dataclass
class _Season:
    """The driver: one engine, one consumer, one team simulator, one clock."""

    engine: Engine
    linkage: Linkage
    consumer: LinkageConsumer
    teams: TeamSimulator
    clock: FakeClock
    masks: MaskSync
    escalations: int = 0
    opened: list[str] = field(default_factory=list)

    def deliver(self, events: Sequence[IncidentEvent]) -> None:
        """Deliver events in order, each at max(now, its event time); equal times go together."""
        group: list[IncidentEvent] = []
        for e in events:
            t = max(self.clock.now(), e.observed_at)
            if t > self.clock.now():
                self._send(group)
                group = []
                self.advance_to(t)
            group.append(e)
        self._send(group)

    def advance_to(self, t: datetime) -> None:
        """Jump to t through every team action and SLA deadline before it; never tick."""
        store = self.linkage.store
        stale = False  # a deadline escalation cannot move (not a pending order): skip it
        while True:
            action, deadline = self.teams.next_action_time(), store.next_deadline()
            if stale and deadline is not None and deadline <= self.clock.now():
                deadline = None
            nxt = min(s for s in (t, action, deadline) if s is not None)
            now = max(self.clock.now(), nxt)
            self.clock.set(now)
            self.teams.run_until(now, self.clock)
            if deadline is not None and deadline <= now:
                escalated = self.consumer.escalate()
                self.escalations += len(escalated)
                stale = not escalated
            if nxt >= t:
                return

    def _send(self, events: list[IncidentEvent]) -> None:
        if not events:
            return
        self.consumer.deliver(events)
        new = [e.incident_id for e in events if e.event is EventKind.OPENED]
        self.opened += new
        self.teams.on_dispatched([order_id(i) for i in new], self.clock.now())


def run_season(
    stream: Path,
    engine: Engine,
    client: redis.Redis,
    routing: RoutingRules,
    seed: int,
    batch_size: int = 5000,
) -> SeasonResult:
    """Run `stream` through the engine, the linkage queue and simulated teams (see the module)."""
    started = time.perf_counter()
    clock = FakeClock(_EPOCH)
    linkage = Linkage(client, routing, clock)
    season = _Season(
        engine=engine,
        linkage=linkage,
        consumer=LinkageConsumer(linkage),
        teams=TeamSimulator(linkage, seed),
        clock=clock,
        masks=MaskSync(linkage.store, engine),
    )
    grace = engine.rules.incidents.grace
    latest = _EPOCH
    season.masks.sync()
    for batch in read_batches(stream, batch_size=batch_size):
        engine.count_rejects(batch.rejects)
        season.deliver(engine.process(batch.detections))
        if batch.detections:
            latest = max(latest, max(d["observed_at"] for d in batch.detections))
            season.advance_to(max(clock.now(), latest - grace))
        season.masks.sync()
    season.deliver(engine.flush())
    season.advance_to(clock.now() + TAIL)
    season.masks.sync()
    stats = engine.stats
    loop_masks = [m for m in linkage.store.masks() if m.name.startswith(LOOP_MASK_PREFIX)]
    return SeasonResult(
        stream=str(stream),
        records=stats.records,
        rejected=sum(stats.rejected.values()),
        incidents_opened=stats.events[EventKind.OPENED],
        incidents_closed=stats.events[EventKind.CLOSED],
        incidents_open=len(engine.tracker.open),
        dispatch=season.consumer.totals,
        opened=season.opened,
        team_actions=len(season.teams.done),
        invalid_actions=season.teams.invalid,
        escalations=season.escalations,
        masks_created=len(loop_masks),
        suppressed_by_loop=sum(
            n for name, n in stats.suppressed_by.items() if name.startswith(LOOP_MASK_PREFIX)
        ),
        report=linkage.report(by=["township"]),
        seconds=time.perf_counter() - started,
    )


def write_season(
    path: Path,
    grid: Path,
    *,
    seed: int,
    days: float,
    fires: int,
    sensors: int,
    cameras: int = 24,
    start: datetime = START,
) -> list[SimSummary]:
    """The season's stream: consecutive episodes of up to EPISODE_FIRES fires, in one file.

    The simulator keeps fires 4-8 km apart whatever their times, so one call places about 50
    fires cheaply and then spends about 0.1 s on each further fire looking for room (600 fires:
    35 s). A season is therefore written as ceil(fires / EPISODE_FIRES) episodes of equal length,
    episode k with seed `seed * 1000 + k`: its own fires, noise and device layout (the sensors
    are redeployed between episodes, a simplification of the demo).
    """
    if days <= 0 or fires < 0:
        raise FirewatchError(f"a season needs days > 0 and fires >= 0 (got {days}, {fires})")
    episodes = max(1, math.ceil(fires / EPISODE_FIRES))
    hours = days * 24 / episodes
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    summaries = []
    with path.open("wb") as out:
        for k in range(episodes):
            summaries.append(
                write_stream(
                    part,
                    grid,
                    seed=seed * 1000 + k,
                    start=start + timedelta(hours=k * hours),
                    hours=hours,
                    sensors=sensors,
                    cameras=cameras,
                    fires=fires * (k + 1) // episodes - fires * k // episodes,
                )
            )
            out.write(part.read_bytes())
    part.unlink()
    return summaries


def season_main(
    grid: Path,
    rules_dir: Path,
    redis_url: str | None,
    redis_dir: Path,
    out_dir: Path,
    seed: int,
    days: float,
    fires: int,
    sensors: int,
) -> str:
    """`firewatch demo`: simulate a season, run it end to end, return the rendered result.

    Redis: with no URL, the embedded server of `redis_dir`, which must be the demo's own
    (DEMO_REDIS_DIR): its database is emptied (FLUSHDB) first, so the demo can be run again.
    With a URL, the database must be empty: the demo never deletes data it did not make.
    """
    if redis_url is None and redis_dir.resolve() == Settings().redis_dir.resolve():
        raise FirewatchError(
            f"{redis_dir} is the dispatch queue's own Redis folder, and the demo empties the "
            f"database it uses: give the demo its own folder, e.g. {DEMO_REDIS_DIR}"
        )
    stream = out_dir / "season.jsonl"
    t0 = time.perf_counter()
    episodes = write_season(stream, grid, seed=seed, days=days, fires=fires, sensors=sensors)
    t1 = time.perf_counter()
    engine = open_engine(Settings(grid=grid, rules=rules_dir))
    routing = engine.rules.routing
    if routing is None:
        raise FirewatchError(f"{rules_dir}: no `routing` section: the linkage queue needs one")
    client = connect(redis_url, redis_dir)
    where = _fresh_database(client, redis_url, redis_dir)
    t2 = time.perf_counter()
    result = run_season(stream, engine, client, routing, seed, DEMO_BATCH_SIZE)
    t3 = time.perf_counter()
    lines = sum(e.lines for e in episodes)
    return "\n".join(
        [
            f"season: {days:g} days from {START:%Y-%m-%d}, {fires} fires, {sensors} sensors, "
            f"seed {seed}: {stream} ({lines:,} lines, simulated in {len(episodes)} episodes)",
            f"redis:  {where}",
            f"time:   simulate {t1 - t0:.1f} s, engine and Redis set-up {t2 - t1:.1f} s, "
            f"season {t3 - t2:.1f} s",
            "",
            result.render(),
        ]
    )


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


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"
