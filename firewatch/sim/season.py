"""The end-to-end dispatch demo: a simulated fire season, engine to field teams, in simulated time.

One in-process pipeline that calls the one implementation of each step:

    stream file --read_batches--> Engine.process --incident events--> LinkageConsumer.deliver
        --> dispatch orders in Redis <-- TeamSimulator (ack / arrive / close) and escalation
        false-alarm closures --MaskSync--> suppression masks in the engine (the closed loop)

Simulated time follows event time. Before an incident event is delivered, it moves to
max(now, the event's observed_at); after each batch it moves to the batch's watermark (latest
observed_at minus the engine's grace period), so teams act and masks reach the engine while the
stream is quiet too. It moves to the earliest of the target, the next team action and the next
SLA deadline, runs what is due there, and moves again: on a FakeClock by jumps (as fast as the
machine goes, the same figures at every run), on a PacedClock by waiting until the time comes
(`firewatch demo` while it serves the dashboard: everything happens at its simulated time, a few
milliseconds of wall clock later, so the figures may differ a little from run to run). After the
stream the season runs on for three days so late closures and escalations play out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from prometheus_client import CollectorRegistry

from firewatch.clock import Clock, FakeClock, PacedClock
from firewatch.engine.core import Engine
from firewatch.errors import FirewatchError
from firewatch.ingest.files import read_batches
from firewatch.linkage.consumer import LinkageConsumer, MaskSync
from firewatch.linkage.report import Report, Row
from firewatch.linkage.service import Linkage
from firewatch.linkage.store import DispatchCounts, order_id
from firewatch.metrics import EngineMeter, EngineMetrics, LinkageCollector, LinkageMetrics
from firewatch.model import Event, EventKind, IncidentEvent
from firewatch.rules.model import RoutingRules
from firewatch.sim.teams import TeamSimulator
from firewatch.sim.world import read_grid
from firewatch.simulate import START, SimSummary, build_stream

TAIL = timedelta(days=3)  # simulated time after the last event: late closures, escalations
LOOP_MASK_PREFIX = "false-alarm-"  # names of masks made by false-alarm closures (Linkage.mask_for)
EPISODE_FIRES = 40  # the season is simulated in episodes of this many fires (write_season)
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
class SeasonMetrics:
    """A season's metrics: its engine's (no event latency: its clock is simulated), its
    escalations and Redis retries, and (registered by run_season, on the season's clock) the
    linkage queue's figures from Redis."""

    registry: CollectorRegistry
    engine: EngineMetrics
    linkage: LinkageMetrics


@dataclass
class _Season:
    """The driver: one engine, one consumer, one team simulator, one clock."""

    engine: Engine
    linkage: Linkage
    consumer: LinkageConsumer
    teams: TeamSimulator
    clock: Clock
    move: Callable[[datetime], object]  # FakeClock.set (a jump) or PacedClock.wait_until
    masks: MaskSync
    escalations: int = 0
    opened: list[str] = field(default_factory=list)

    def deliver(self, events: Sequence[Event]) -> None:
        """Deliver events in order, each at max(now, its event time); equal times go together."""
        group: list[Event] = []
        for e in events:
            t = max(self.clock.now(), e.observed_at)
            if t > self.clock.now():
                self._send(group)
                group = []
                self.advance_to(t)
            group.append(e)
        self._send(group)

    def reach(self, t: datetime) -> None:
        """Simulated time moves on to t (it is there or later when this returns)."""
        if t > self.clock.now():
            self.move(t)

    def advance_to(self, t: datetime) -> None:
        """Move to t through every team action and SLA deadline before it; never tick."""
        store = self.linkage.store
        stale = False  # a deadline escalation cannot move (not a pending order): skip it
        while True:
            action, deadline = self.teams.next_action_time(), store.next_deadline()
            if stale and deadline is not None and deadline <= self.clock.now():
                deadline = None
            nxt = min(s for s in (t, action, deadline) if s is not None)
            self.reach(nxt)
            now = max(self.clock.now(), nxt)
            self.teams.run_until(now, self.reach)
            if deadline is not None and deadline <= now:
                escalated = self.consumer.escalate()
                self.escalations += len(escalated)
                stale = not escalated
            if nxt >= t:
                return

    def _send(self, events: list[Event]) -> None:
        if not events:
            return
        self.consumer.deliver(events)
        new = [
            e.incident_id
            for e in events
            if isinstance(e, IncidentEvent) and e.event is EventKind.OPENED
        ]
        self.opened += new
        self.teams.on_dispatched([order_id(i) for i in new], self.clock.now())


def run_season(
    stream: Path,
    engine: Engine,
    client: redis.Redis,
    routing: RoutingRules,
    seed: int,
    batch_size: int = 5000,
    pace: PacedClock | None = None,
    metrics: SeasonMetrics | None = None,
) -> SeasonResult:
    """Run `stream` through the engine, the linkage queue and simulated teams (see the module):
    on a FakeClock, or at the pace of `pace`, which must start before the stream. With
    `metrics`, the season is counted there as it goes."""
    started = time.perf_counter()
    clock: Clock
    if pace is None:
        clock = fake = FakeClock(_EPOCH)
        move: Callable[[datetime], object] = fake.set
    else:
        clock, move = pace, pace.wait_until
    linkage = Linkage(client, routing, clock)
    meter = None
    if metrics is not None:
        meter = EngineMeter(metrics.engine)
        meter.watch(engine)
        metrics.registry.register(LinkageCollector(client, clock, metrics.linkage))
    season = _Season(
        engine=engine,
        linkage=linkage,
        consumer=LinkageConsumer(linkage, observer=metrics.linkage if metrics else None),
        teams=TeamSimulator(linkage, seed),
        clock=clock,
        move=move,
        masks=MaskSync(linkage.store, engine),
    )
    grace = engine.rules.incidents.grace
    latest = _EPOCH
    season.masks.sync()
    for batch in read_batches(stream, batch_size=batch_size):
        engine.count_rejects(batch.rejects)
        events = engine.process(batch.detections)
        if meter is not None:
            meter.metrics.count_rejects(batch.rejects)
            meter.update(engine, events)
        season.deliver(events)
        if batch.detections:
            latest = max(latest, max(d["observed_at"] for d in batch.detections))
            season.advance_to(max(clock.now(), latest - grace))
        season.masks.sync()
    events = engine.flush()
    if meter is not None:
        meter.update(engine, events)
    season.deliver(events)
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

    The simulator keeps fires 4-8 km apart whatever their times, so one call has room for only a
    few dozen fires in the Qujiang grid, the rest placed anywhere after thousands of tries. A
    season is therefore written as ceil(fires / EPISODE_FIRES) episodes of equal length, episode
    k with seed `seed * 1000 + k`: its own fires and noise, in one world (the devices of episode
    0 stand where they are all season, so device health sees the same devices). The grid is read
    once. The demo
    season (330 fires, 69,809 lines) takes well under a second (benchmarks/README.md).
    """
    if days <= 0 or fires < 0:
        raise FirewatchError(f"a season needs days > 0 and fires >= 0 (got {days}, {fires})")
    episodes = max(1, math.ceil(fires / EPISODE_FIRES))
    hours = days * 24 / episodes
    sim_grid = read_grid(grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    summaries = []
    with path.open("wb") as out:
        for k in range(episodes):
            stream = build_stream(
                sim_grid,
                seed=seed * 1000 + k,
                start=start + timedelta(hours=k * hours),
                hours=hours,
                sensors=sensors,
                cameras=cameras,
                fires=fires * (k + 1) // episodes - fires * k // episodes,
                world_seed=seed * 1000,
            )
            stream.write(out)
            summaries.append(stream.summary)
    return summaries


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"
