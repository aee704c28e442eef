"""Engine and ingest metrics, counted at the edges that run an engine: `firewatch replay`, the
worker's stages, the API's intake and the demo.

The engine imports no metrics and reads no clock. An edge keeps an `EngineMeter`, which watches
its engines (one, or one per region in a worker) and after each batch adds the growth of each
engine's cumulative counts (EngineStats: outcomes per source, located detections per district,
late fire signals) to the counters, observes the stage durations the engine measured with the
meter's timer, and counts the incident events the batch gave. Rejects are counted where records
are validated (the edges), from the rejects themselves.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from firewatch.clock import Clock
from firewatch.engine.core import Engine
from firewatch.engine.stats import STAGES, EngineStats
from firewatch.model import (
    SOURCES,
    DeviceEvent,
    DeviceEventKind,
    Event,
    EventKind,
    IncidentEvent,
    Outcome,
    Reject,
    RejectReason,
    Severity,
)

# seconds; a batch of 5,000 detections takes milliseconds per stage
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# seconds from a detection's event time to the incident event it caused: includes the grace
# period (10 min by default) unless the rules open an incident at once
LATENCY_BUCKETS = (
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 660, 720, 900, 1200, 1800, 3600,
    7200, 21600, 86400,
)  # fmt: skip
OUTCOMES = tuple(o for o in Outcome if o is not Outcome.REJECTED)  # rejects: by reason
_WATCHED = ("sensor", "camera")  # the sources device health watches (rules: devices)
_DEVICE_SUBJECTS = {
    DeviceEventKind.DEVICE_NEW: _WATCHED,
    DeviceEventKind.DEVICE_DOWN: _WATCHED,
    DeviceEventKind.DEVICE_UP: _WATCHED,
    DeviceEventKind.CELL_BLIND: ("cell",),
    DeviceEventKind.CELL_WATCHED: ("cell",),
}
VALIDATE = "validate"  # the stage the edges time themselves (validation happens there)


class EngineMetrics:
    """The engine's and the intake's metrics on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.detections = Counter(
            "firewatch_engine_detections_total",
            "Valid detections by source and outcome (outside, suppressed, ignored: no fire "
            "signal, suspect, incident: a strong fire signal, duplicate, stale)",
            ["source", "outcome"],
            registry=registry,
        )
        self.located = Counter(
            "firewatch_engine_located_total",
            "Detections inside a grid cell, by source and the cell's district",
            ["source", "district"],
            registry=registry,
        )
        self.late = Counter(
            "firewatch_engine_late_detections_total",
            "Fire signals that arrived after their region's watermark (later than the grace "
            "period), processed at once",
            ["source"],
            registry=registry,
        )
        self.rejects = Counter(
            "firewatch_ingest_rejects_total",
            "Records rejected by validation, by reason",
            ["reason"],
            registry=registry,
        )
        self.batch = Histogram(
            "firewatch_engine_batch_duration_seconds",
            "Seconds a batch spends in a stage: validate (with reading and parsing), locate, "
            "rules, incidents",
            ["stage"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "firewatch_engine_event_latency_seconds",
            "Wall clock when an incident event is emitted minus the event time (observed_at) of "
            "the detection that caused it (for `closed`: the inactivity deadline); live input only",
            ["event"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "firewatch_engine_incident_events_total",
            "Incident events emitted, by kind and severity",
            ["event", "severity"],
            registry=registry,
        )
        self.device_events = Counter(
            "firewatch_engine_device_events_total",
            "Device health events emitted (device_down, device_up, cell_blind, cell_watched), "
            "by kind and source (`cell` for a cell's)",
            ["event", "source"],
            registry=registry,
        )
        self.open = Gauge(
            "firewatch_engine_open_incidents",
            "Incidents open in this process's engines",
            registry=registry,
        )
        self.devices_down = Gauge(
            "firewatch_engine_devices_down",
            "Devices silent for longer than their tolerance now, in this process's engines",
            registry=registry,
        )
        self.cells_blind = Gauge(
            "firewatch_engine_cells_blind",
            "Grid cells whose every watching device is down now, in this process's engines",
            registry=registry,
        )
        for source in SOURCES:  # every series from the start: rate() and alerts need a zero
            self.late.labels(source.value)
            for outcome in OUTCOMES:
                self.detections.labels(source.value, outcome.value)
        for reason in RejectReason:
            self.rejects.labels(reason.value)
        for stage in (VALIDATE, *STAGES):
            self.batch.labels(stage)
        for kind in EventKind:
            self.latency.labels(kind.value)
            for severity in Severity:
                self.events.labels(kind.value, severity.value)
        for device_kind in DeviceEventKind:
            for subject in _DEVICE_SUBJECTS[device_kind]:
                self.device_events.labels(device_kind.value, subject)

    def count_rejects(self, rejects: Iterable[Reject]) -> None:
        for reason, n in Tally(r.reason.value for r in rejects).items():
            self.rejects.labels(reason).inc(n)

    def count_outside(self, sources: Iterable[str]) -> None:
        """Detections found outside every cell before any engine saw them (a worker's locate
        stage routes them nowhere): their sources."""
        for source, n in Tally(sources).items():
            self.detections.labels(source, Outcome.OUTSIDE.value).inc(n)

    def districts(self, names: Iterable[str]) -> None:
        """Start every (source, district) series at zero: "no detections from a district for an
        hour" needs the district's series before its first detection."""
        for name in names:
            for source in SOURCES:
                self.located.labels(source.value, name)


@dataclass
class _Seen:
    stats: EngineStats  # the object the counts below were read from
    by_source: Tally[tuple[str, str]]
    late: Tally[str]
    located: Tally[tuple[str, str]]
    open: int = 0
    down: int = 0  # devices down
    blind: int = 0  # cells blind

    @classmethod
    def of(cls, stats: EngineStats, engine: Engine | None = None) -> _Seen:
        return cls(
            stats,
            Tally(stats.by_source),
            Tally(stats.late_by_source),
            Tally(stats.located),
            len(engine.tracker.open) if engine else 0,
            engine.health.down_count if engine else 0,
            engine.health.blind_count if engine else 0,
        )


class EngineMeter:
    """Engine metrics from the engines an edge runs, as deltas of their stats after each batch.

    `clock`: the edge's wall clock, for the event latency (None: not observed; a replay's or a
    simulation's events are not live). `timer`: the monotonic timer the engines measure their
    stages with."""

    def __init__(
        self,
        metrics: EngineMetrics,
        clock: Clock | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.metrics = metrics
        self.clock = clock
        self.timer = timer
        self._seen: dict[Hashable, _Seen] = {}
        self._districts: set[tuple[str, ...]] = set()

    def watch(self, engine: Engine, key: Hashable = None) -> None:
        """From now on, count what `engine` does (after a restore: what it did before is not
        counted again)."""
        engine.laps.timer = self.timer
        engine.laps.take()
        names = tuple(engine.districts)
        if names not in self._districts:
            self._districts.add(names)
            self.metrics.districts(names)
        self._seen[key] = _Seen.of(engine.stats, engine)
        self._set_open()

    def forget(self, key: Hashable = None) -> None:
        """An engine no longer run here (its partition moved to another worker)."""
        if self._seen.pop(key, None) is not None:
            self._set_open()

    def timed(self, stage: str, seconds: float) -> None:
        """A stage the edge timed itself (validate)."""
        self.metrics.batch.labels(stage).observe(seconds)

    def update(self, engine: Engine, events: Sequence[Event] = (), key: Hashable = None) -> None:
        """After a batch (or an advance, a flush): what `engine` counted since the last update,
        and the incident events it gave."""
        seen = self._seen.get(key)
        if seen is None or seen.stats is not engine.stats:  # unwatched, or restored meanwhile
            seen = _Seen.of(EngineStats())
        now = _Seen.of(engine.stats, engine)
        m = self.metrics
        for (source, outcome), n in (now.by_source - seen.by_source).items():
            m.detections.labels(source, outcome).inc(n)
        for source, n in (now.late - seen.late).items():
            m.late.labels(source).inc(n)
        for (source, district), n in (now.located - seen.located).items():
            m.located.labels(source, district).inc(n)
        for stage, seconds in engine.laps.take().items():
            m.batch.labels(stage).observe(seconds)
        if events:
            self.count_events(events)
        self._seen[key] = now
        self._set_open()

    def count_events(self, events: Sequence[Event]) -> None:
        m = self.metrics
        incidents = [e for e in events if isinstance(e, IncidentEvent)]
        for (kind, severity), n in Tally(
            (e.event.value, e.severity.value) for e in incidents
        ).items():
            m.events.labels(kind, severity).inc(n)
        devices = Tally(
            (e.event.value, e.source.value if e.source else "cell")
            for e in events
            if isinstance(e, DeviceEvent)
        )
        for (kind, subject), n in devices.items():
            m.device_events.labels(kind, subject).inc(n)
        if self.clock is not None:
            at = self.clock.now()
            for e in incidents:
                m.latency.labels(e.event.value).observe((at - e.observed_at).total_seconds())

    def _set_open(self) -> None:
        """The gauges of what is open now: incidents, devices down, cells blind."""
        seen = self._seen.values()
        self.metrics.open.set(sum(s.open for s in seen))
        self.metrics.devices_down.set(sum(s.down for s in seen))
        self.metrics.cells_blind.set(sum(s.blind for s in seen))
