"""`firewatch replay`: run the engine over JSONL or FIRMS CSV files, one stream in file order.

`now` is the wall-clock time the input was recorded: the CLI passes the clock's time unless told
otherwise (`--now`), and a record observed more than `sources.max_future` after it is rejected as
`future_timestamp` (a device clock ahead must not move event time for everyone). A file recorded
in another time (a simulation of next season, a machine with a wrong clock) replayed without
`--now` therefore loses its records from after now + max_future: the summary counts them and
says to pass `--now`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from firewatch.engine.core import Engine
from firewatch.ingest.files import read_batches
from firewatch.ingest.validate import gc_paused
from firewatch.metrics.engine import VALIDATE, EngineMeter, EngineMetrics
from firewatch.model import Event, Outcome, Reject, RejectReason
from firewatch.progressbar import Bar


@dataclass
class ReplaySummary:
    inputs: list[str]
    stats: dict[str, Any]
    seconds: float
    open_incidents: int
    pending_suspects: int
    suspects_expired: int
    extra: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None  # the replay's wall-clock time (None: no future check)
    not_after: datetime | None = None  # now + sources.max_future: later records were rejected

    @property
    def rate(self) -> float:
        return self.stats["records"] / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        s = self.stats
        o = s["outcomes"]
        rejected = ", ".join(f"{k} {v:,}" for k, v in s["rejected"].items()) or "none"
        suppressed = ", ".join(f"{k} {v:,}" for k, v in s["suppressed_by"].items()) or "none"
        located = s["records"] - o[Outcome.REJECTED] - o[Outcome.OUTSIDE]
        ev = s["events"]
        when = "" if self.now is None else f" at {self.now.isoformat()}"
        return "\n".join(
            [
                f"replay of {', '.join(self.inputs)}{when}",
                f"  records read      {s['records']:>10,}",
                f"  rejected          {o[Outcome.REJECTED]:>10,}  ({rejected})",
                *self._future(),
                f"  located           {located:>10,}",
                f"  outside           {o[Outcome.OUTSIDE]:>10,}",
                f"  suppressed        {o[Outcome.SUPPRESSED]:>10,}  ({suppressed})",
                f"  no fire signal    {o[Outcome.IGNORED]:>10,}",
                f"  suspects          {o[Outcome.SUSPECT]:>10,}  "
                f"({self.suspects_expired:,} expired uncorroborated, "
                f"{self.pending_suspects:,} pending)",
                f"  strong signals    {o[Outcome.INCIDENT]:>10,}",
                f"  duplicates        {o[Outcome.DUPLICATE]:>10,}",
                f"  late (> grace)    {s['late']:>10,}   stale {o[Outcome.STALE]:,}",
                f"  incidents opened  {ev['opened']:>10,}   updated {ev['updated']:,}   "
                f"closed {ev['closed']:,}   still open {self.open_incidents:,}",
                f"  throughput        {self.rate:>10,.0f} records/s ({self.seconds:.2f} s)",
            ]
        )

    def _future(self) -> list[str]:
        """The records rejected as observed after now + max_future, and what to do about it."""
        future = self.stats["rejected"].get(RejectReason.FUTURE_TIMESTAMP.value, 0)
        if not future or self.not_after is None:
            return []
        return [
            f"    in the future   {future:>10,}  (future_timestamp: observed after "
            f"{self.not_after.isoformat()}, now + sources.max_future)",
            "    input recorded at another time (elsewhere, simulated)? replay it with "
            "--now <a time after its records>",
        ]


def write_events(events: Sequence[Event], out: IO[bytes]) -> None:
    for e in events:
        out.write(e.model_dump_json().encode() + b"\n")


def write_rejects(rejects: Sequence[Reject], out: IO[bytes]) -> None:
    for r in rejects:
        out.write(r.model_dump_json().encode() + b"\n")


def replay(
    engine: Engine,
    inputs: Sequence[Path],
    out: Path,
    rejects: Path | None = None,
    batch_size: int = 5000,
    max_line_bytes: int = 65536,
    progress: IO[str] | None = None,
    now: datetime | None = None,
    metrics: EngineMetrics | None = None,
) -> ReplaySummary:
    """Replay `inputs` through `engine`, writing incident events to `out` (JSONL).

    With `now` (timezone-aware: when the input was recorded; the CLI's default is the clock's
    time), a record observed more than rules.sources.max_future after it is rejected as
    future_timestamp. Without it, nothing is checked against a clock.

    With `metrics`, the run is counted there after each batch (no event latency: the input is
    recorded, its events are not live)."""
    not_after = None if now is None else engine.not_after(now)
    size = sum(p.stat().st_size for p in inputs)
    meter = EngineMeter(metrics) if metrics is not None else None
    if meter is not None:
        meter.watch(engine)
    started = time.perf_counter()
    with ExitStack() as stack:
        bar = stack.enter_context(Bar(progress or sys.stderr, "replay", size))
        events_out = stack.enter_context(out.open("wb"))
        rejects_out = stack.enter_context(rejects.open("wb")) if rejects else None
        for path in inputs:
            batches = read_batches(path, batch_size, max_line_bytes, not_after)
            while True:
                # the collector paused over a batch from its reading to its events: its
                # detections are freed before a collection meets them (ingest/validate.py)
                with gc_paused():
                    read = time.perf_counter()
                    batch = next(batches, None)
                    if batch is None:
                        break
                    validated = time.perf_counter() - read  # reading the file, validating
                    engine.count_rejects(batch.rejects)
                    if rejects_out is not None:
                        write_rejects(batch.rejects, rejects_out)
                    events = engine.process(batch.detections, t=batch.t)
                    write_events(events, events_out)
                bar.update(engine.stats.records, advance=batch.bytes)
                if meter is not None:
                    meter.timed(VALIDATE, validated)
                    meter.metrics.count_rejects(batch.rejects)
                    meter.update(engine, events)
        events = engine.flush()
        write_events(events, events_out)
        if meter is not None:
            meter.update(engine, events)
    return ReplaySummary(
        inputs=[str(p) for p in inputs],
        stats=engine.stats.as_dict(),
        seconds=time.perf_counter() - started,
        open_incidents=len(engine.tracker.open),
        pending_suspects=engine.tracker.pending_suspects,
        suspects_expired=engine.tracker.suspects_expired,
        now=now,
        not_after=not_after,
    )
