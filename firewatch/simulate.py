"""`firewatch simulate`: a seeded, deterministic detection stream for a forest grid.

Real hotspot data for Qujiang is scarce, so the demo stream is made up, in the detection contract of
`firewatch.model`, one JSON record per line, in ARRIVAL order:

- every sensor reports every 10 minutes; normal readings are most of the volume
  (`firewatch.sim.sensors`);
- `fires` fires at seeded places and times, seen by sensors, cameras and satellite passes
  according to their kind (`firewatch.sim.scenario`, `firewatch.sim.signals`);
- background noise that must open nothing: single sensor spikes, weak (< 0.5) and uncorroborated
  (0.5-0.8) camera hits, weak satellite pixels far from anything, and a static industrial heat
  source that every satellite pass sees with `static: true`;
- the transport's doing: missing ids, delays, late records, duplicates and malformed lines
  (`firewatch.sim.transport`).

The same arguments give the same bytes. `write_stream` returns a `SimSummary`: the ground truth
(fires, noise, malformed, duplicate and late lines, with line numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, TypedDict

import numpy as np
from typing_extensions import Unpack

from firewatch.errors import FirewatchError
from firewatch.sim.outages import heartbeats, plan_outages, silenced_readings
from firewatch.sim.records import Recorder
from firewatch.sim.scenario import Fire, Noise, Pass, plan_fires, plan_noise, satellite_passes
from firewatch.sim.sensors import SensorLines, normal_readings
from firewatch.sim.signals import Seen, burn, false_signal, static_source
from firewatch.sim.summary import NoiseEvent, Outage, SimFire, SimSummary, StaticSite
from firewatch.sim.timefmt import Stamps
from firewatch.sim.transport import Delivery, deliver
from firewatch.sim.world import SimGrid, World, make_world, read_grid

__all__ = [
    "START",
    "SimStream",
    "SimSummary",
    "build_stream",
    "simulate",
    "simulate_main",
    "write_stream",
]

START = datetime(2026, 4, 4, tzinfo=timezone(timedelta(hours=8)))  # Qingming: peak fire season
# The kiln of a cement works in the Qu valley (the `qujiang-cement-works` mask of rules/masks.yaml):
# the static heat source every satellite pass sees, when it lies in the grid.
CEMENT_WORKS = (28.9826, 118.9780)  # lat, lon
NOISE = {"sensor_spike": 8, "camera_weak": 10, "camera_suspect": 6, "satellite_low": 2}


@dataclass(frozen=True)
class SimStream:
    summary: SimSummary
    delivery: Delivery

    def lines(self) -> Iterator[bytes]:
        """The JSONL lines in arrival order (bytes, no newline)."""
        return self.delivery.lines()

    def write(self, out: BinaryIO) -> None:
        """Write the lines to `out`, one record per line ("\\n" endings)."""
        for chunk in self.delivery.chunks():
            out.write(chunk)


def build_stream(
    grid: Path | SimGrid,
    *,
    seed: int = 1,
    start: datetime = START,
    hours: float = 24.0,
    sensors: int = 400,
    cameras: int = 24,
    fires: int = 5,
    world_seed: int | None = None,
) -> SimStream:
    """Plan the whole stream; its lines are formatted only when iterated.

    `grid` is a GeoJSON grid file, or a grid `read_grid` already read (a season of many
    episodes reads its grid once). `world_seed` places the devices (default: `seed`): the
    episodes of a season share one world."""
    if seed < 0 or hours <= 0 or min(sensors, cameras, fires) < 0:
        raise FirewatchError(
            "simulate needs seed >= 0, hours > 0 and sensors, cameras, fires >= 0 "
            f"(got seed={seed}, hours={hours}, sensors={sensors}, cameras={cameras}, fires={fires})"
        )
    if start.utcoffset() is None:
        raise FirewatchError(f"simulate needs a timezone-aware start time, got {start}")

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([seed, stream])

    stamps = Stamps(start)
    start_s = int(start.timestamp())
    end_s = start_s + round(hours * 3600)
    sim_grid = read_grid(grid) if isinstance(grid, Path) else grid
    world_rng = np.random.default_rng([seed if world_seed is None else world_seed, 1])
    world = make_world(sim_grid, sensors, cameras, world_rng, CEMENT_WORKS)
    bulk = normal_readings(world.phase, start_s, int(hours * 6 + 1e-9), stamps, rng(2))
    passes = satellite_passes(stamps, start_s, end_s, rng(3))
    planned = plan_fires(world, passes, fires, start_s, end_s, rng(4))
    rec = Recorder(world, stamps, end_s, bearings=rng(8))
    signal_rng = rng(5)
    seen = [burn(f, bulk, passes, rec, signal_rng) for f in planned]
    static_records = static_source(passes, rec, signal_rng)
    camera_times = {c: list(ts) for c, ts in rec.camera_times.items()}
    noise = plan_noise(world, bulk, planned, passes, camera_times, NOISE, start_s, end_s, rng(6))
    for event in noise:
        false_signal(event, bulk, passes, rec, signal_rng)
    window = (start_s, end_s)
    silences = plan_outages(world, bulk, rec.camera_times, window, rng(9))
    beats = heartbeats(rec, silences, window, rng(10))
    lines = SensorLines(bulk, world.sensors, stamps)
    silent = silenced_readings(bulk, world, silences)
    delivery = deliver(lines, rec.specials(), stamps, window, rng(7), silent)
    summary = SimSummary(
        seed=seed,
        start=start,
        hours=hours,
        lines=len(delivery.order),
        records=sum(delivery.by_source.values()),
        by_source=delivery.by_source,
        fires=[_fire_summary(world, stamps, f, s) for f, s in zip(planned, seen, strict=True)],
        noise=[_noise_summary(world, stamps, passes, e) for e in noise],
        static_site=_static_summary(world, static_records),
        malformed=delivery.malformed,
        duplicates=delivery.duplicates,
        late=delivery.late,
        outages=[
            Outage(
                device_id=s.device,
                source=s.source,
                start=stamps.at(s.start),
                end=stamps.at(s.end),
                cause=s.cause,
            )
            for s in silences
        ],
        heartbeats=beats,
    )
    return SimStream(summary, delivery)


class StreamOptions(TypedDict, total=False):
    """build_stream's keyword options, which simulate and write_stream pass on as they are."""

    seed: int
    start: datetime
    hours: float
    sensors: int
    cameras: int
    fires: int
    world_seed: int | None


def simulate(grid: Path | SimGrid, **options: Unpack[StreamOptions]) -> Iterator[bytes]:
    """The stream's JSONL lines in arrival order (bytes, no trailing newline)."""
    return build_stream(grid, **options).lines()


def write_stream(path: Path, grid: Path | SimGrid, **options: Unpack[StreamOptions]) -> SimSummary:
    """Write the stream to `path`, one record per line ("\\n" endings), and return its summary."""
    stream = build_stream(grid, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        stream.write(out)
    return stream.summary


def simulate_main(
    grid: Path, out: Path, seed: int, hours: float, sensors: int, cameras: int, fires: int
) -> str:
    """`firewatch simulate`: write the stream, return a one-line summary."""
    summary = write_stream(
        out, grid, seed=seed, hours=hours, sensors=sensors, cameras=cameras, fires=fires
    )
    return f"{out}: {summary.render()}"


def _fire_summary(world: World, stamps: Stamps, fire: Fire, seen: Seen) -> SimFire:
    lon, lat = world.grid.to_deg(np.array([fire.x]), np.array([fire.y]))
    return SimFire(
        name=fire.name,
        kind=fire.kind,
        start=stamps.at(fire.t0),
        end=stamps.at(fire.t1),
        lat=float(lat[0]),
        lon=float(lon[0]),
        cell_id=world.grid.ids[fire.cell],
        team=world.grid.teams[fire.cell],
        sensors=seen.sensors,
        cameras=seen.cameras,
        records={s: seen.records[s] for s in ("sensor", "camera", "satellite")},
    )


def _noise_summary(world: World, stamps: Stamps, passes: list[Pass], event: Noise) -> NoiseEvent:
    lon, lat = world.grid.to_deg(np.array([event.x]), np.array([event.y]))
    if event.kind == "sensor_spike":
        device = world.sensors.names[event.device]
    elif event.kind == "satellite_low":
        device = passes[event.device].device
    else:
        device = world.cameras.names[event.device]
    return NoiseEvent(
        kind=event.kind,
        device_id=device,
        observed_at=stamps.at(event.t),
        lat=float(lat[0]),
        lon=float(lon[0]),
    )


def _static_summary(world: World, records: int) -> StaticSite:
    x, y = world.static_xy
    lon, lat = world.grid.to_deg(np.array([x]), np.array([y]))
    cell = world.grid.locate(x, y)
    return StaticSite(
        lat=float(lat[0]),
        lon=float(lon[0]),
        cell_id=None if cell is None else world.grid.ids[cell],
        records=records,
    )
