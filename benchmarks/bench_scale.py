"""Memory and scale of one worker: a province of sensors and many open incidents (issue #11).

    .venv/bin/python benchmarks/bench_scale.py [--devices 1000000] [--incidents 10000]
        [--minutes 14] [--no-readme]

This process plays the broker and the devices; the worker is a fresh child process (`--worker`,
started before this one grows) that drives one `stages.Worker` as the Kafka stages do, without
Kafka. What it measures and how: SECTION below, written to benchmarks/README.md ("Scale").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
import shapely  # noqa: E402
from machine import best_of, describe, write_section  # noqa: E402
from synthetic_grid import AREA, voronoi_cells  # noqa: E402

from firewatch.clock import FakeClock  # noqa: E402
from firewatch.engine.core import Engine  # noqa: E402
from firewatch.engine.state import decode  # noqa: E402
from firewatch.geo.grid import load_grid  # noqa: E402
from firewatch.geo.index import load_index  # noqa: E402
from firewatch.rules import load_rules  # noqa: E402
from firewatch.runtime import engine_factory  # noqa: E402
from firewatch.settings import Settings  # noqa: E402
from firewatch.stream.checkpoint import Checkpoints  # noqa: E402
from firewatch.stream.heap import keep_freed_memory  # noqa: E402
from firewatch.stream.stages import MARKER, Worker, pack_state  # noqa: E402

RULES = ROOT / "rules"
START = datetime(2026, 4, 20, 0, 0, tzinfo=UTC)  # outside the rule masks' time windows
LINE = (  # a reading as firewatch simulate writes it (firewatch/sim/sensors.py), UTC+8
    b'{"id":"%s:%d","source":"sensor","device_id":"%s","observed_at":"%s+08:00","lat":%.6f,'
    b'"lon":%.6f,"readings":{"temperature_c":%.1f,"co_ppm":%.1f,"humidity_pct":%.1f}}'
)
MB = 1024 * 1024


# -- the worker: a fresh process -------------------------------------------------------------
def memory() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process alone, in bytes: ru_maxrss carries a parent's over exec."""
    with open("/proc/self/status", encoding="ascii") as f:
        kb = {k: v.split()[0] for k, v in (line.split(":", 1) for line in f) if k[:2] == "Vm"}
    return int(kb["VmRSS"]) * 1024, int(kb["VmHWM"]) * 1024


class Stages:
    """The worker's two stages around one `Worker`, as worker.py and locate.py drive them."""

    def __init__(self, worker: Worker, route: dict[bytes, int], take: int) -> None:
        self.worker, self.route, self.take_n = worker, route, take
        self.parts = worker.topics.partitions
        self.table = MemoryTable()
        # the incidents stage's own checkpoints (stream/checkpoint.py), on an in-memory table
        self.saves = Checkpoints(worker, self.table, worker.settings.snapshot_every)
        self.saves.due = worker.timer() + worker.settings.snapshot_every
        self.queue: deque[tuple[int, bytes, bytes]] = deque()  # located topic: (partition, k, v)
        self.offsets = [0] * self.parts
        self.secs = dict.fromkeys(("locate", "incidents", "checkpoints"), 0.0)
        self.lines = self.rejects = self.events = self.checkpoints = 0

    def getmany(self, batch: list[tuple[int, bytes]]) -> None:
        """One getmany of the locate stage: its records by detection partition, then markers."""
        records = [(p, blob.split(b"\n")) for p, blob in batch]  # the Kafka client's part
        began = time.perf_counter()
        for p, values in records:
            n, stamp = len(values), int(time.time() * 1000)
            first = self.offsets[p]
            out, dead = self.worker.locate(p, values, range(first, first + n), [stamp] * n)
            self.offsets[p] += n
            self.lines, self.rejects = self.lines + n, self.rejects + len(dead)
            self.queue.extend((self.route[key], key, value) for key, value in out)
        marker = self.worker.marker(frozenset(), self.parts)
        if marker is not None:
            self.queue.extend((q, MARKER, marker) for q in range(self.parts))
        self.secs["locate"] += time.perf_counter() - began
        while self.queue:  # the agent takes what arrived while locate worked, `take_n` at most
            self.take()

    def take(self) -> None:
        """One noack_take of the incidents agent, then a checkpoint when one is due."""
        began = time.perf_counter()
        groups: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for _ in range(min(self.take_n, len(self.queue))):
            q, key, value = self.queue.popleft()
            groups[q].append((key, value))
        for q, records in groups.items():
            events, touched = self.worker.incidents(q, records, self.saves.saved)
            self.events += len([e.model_dump_json().encode() for e in events])  # as published
            self.saves.took((), touched)  # no located messages to ack: no broker here
        self.secs["incidents"] += time.perf_counter() - began
        if self.saves.is_due(self.worker.timer()):
            self.checkpoint()

    def checkpoint(self) -> None:
        began = time.perf_counter()
        asyncio.run(self.saves.checkpoint())
        self.checkpoints += 1
        self.secs["checkpoints"] += time.perf_counter() - began


class MemoryTable:
    """A Faust table as Checkpoints uses it, in memory: its changelog delivers at once, and its
    store keeps what was delivered (Faust's memory:// store)."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}
        self.changelog_topic = self
        self.data = self
        self.offset = 0

    def send_soon(
        self, key: bytes, value: bytes, partition: int, callback: Any
    ) -> asyncio.Future[Any]:
        """Delivered at once: the callback has run, and the delivery is done."""
        tp = SimpleNamespace(topic="changelog", partition=partition)
        meta = SimpleNamespace(topic_partition=tp, offset=self.offset)
        self.offset += 1
        callback(SimpleNamespace(result=lambda: meta))
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        sent.set_result(meta)
        return sent

    def apply_changelog_batch(self, batch: Any, to_key: Any, to_value: Any) -> None:
        for change in batch:
            self.rows[to_key(change.key)] = to_value(change.value)

    def items(self) -> Any:
        return self.rows.items()

    def values(self) -> Any:
        return self.rows.values()


def run_worker(inp: IO[bytes], out: IO[bytes]) -> None:
    keep_freed_memory()  # as `firewatch worker` does
    cfg: dict[str, Any] = pickle.load(inp)
    inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    settings = Settings(grid=cfg["grid"], rules=RULES, cache_dir=cfg["cache"])
    make_engine = engine_factory(settings)
    worker = Worker(settings, make_engine, clock=FakeClock(cfg["clock"]))
    gc.collect()
    loaded = memory()[0]
    stages = Stages(worker, cfg["route"], cfg["take"])
    samples: list[tuple[int, int, int]] = []
    while (frame := pickle.load(inp)) is not None:
        stages.getmany(frame[0])
        if frame[1]:  # a minute of event time: what grows
            held = [e for _, e in worker.engines.values()]
            seen = sum(len(e._seen) for e in held)
            samples.append((memory()[0], seen, sum(len(e.tracker._deadlines) for e in held)))
    stages.checkpoint()
    gc.collect()
    after, peak = memory()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    engines = {r.decode(): e for r, (_, e) in worker.engines.items()}
    window = held_bytes(list(engines.values()))
    opened = sum(len(e.tracker.open) for e in engines.values())
    if opened != cfg["incidents"] or stages.rejects or worker.counts["outside"]:
        raise SystemExit(f"{opened} incidents open, {stages.rejects} rejects: not the scenario")
    snaps = {r: e.snapshot() for r, e in engines.items()}
    by_size = sorted(snaps, key=lambda r: len(snaps[r]))
    names = {"busiest": by_size[-1], "median": by_size[len(by_size) // 2]}
    regions = {k: measure(engines[r], snaps[r], make_engine) for k, r in names.items()}
    busy = engines[names["busiest"]]
    day = a_day(snaps[names["busiest"]], cfg["window"], cfg["minutes"])
    day_measured = measure(busy, day, make_engine, reps=3)
    result: dict[str, Any] = dict(
        inherited=inherited, loaded=loaded, after=after, peak=peak, maxrss=maxrss
    )
    result |= dict(lines=stages.lines, events=stages.events, checkpoints=stages.checkpoints)
    result |= dict(secs=stages.secs, names=names, regions=regions, day=day_measured)
    result |= dict(total=sum(map(len, snaps.values())), packed=sum(map(len, stages.table.values())))
    out.write(orjson.dumps(result | {"samples": samples, "count": len(engines), "held": window}))
    out.flush()


def held_bytes(engines: list[Engine]) -> tuple[int, int, int, int]:
    """Python object bytes and entries of the dedup windows (the id set, the (t, id) deque, their
    floats and id strings) and of the tracker's deadline heaps (lists, tuples, floats; the ids
    are the incidents')."""
    size = sys.getsizeof
    seen = sum(size(e._seen) + size(e._seen_order) for e in engines)
    seen += sum(size(x) + size(x[0]) + size(x[1]) for e in engines for x in e._seen_order)
    heaps = [e.tracker._deadlines for e in engines]
    heap = sum(size(h) + sum(size(x) + size(x[0]) for x in h) for h in heaps)
    return seen, sum(len(e._seen) for e in engines), heap, sum(map(len, heaps))


def measure(engine: Engine, snap: bytes, make_engine: Any, reps: int = 5) -> dict[str, float]:
    """A region's state: sizes, Engine.snapshot and Engine.restore into a fresh engine (best of
    `reps` each), and the baseline: pickle of the same decoded state."""
    restore, restored = float("inf"), engine
    for _ in range(reps):
        restored = make_engine()
        began = time.perf_counter()
        restored.restore(snap)
        restore = min(restore, time.perf_counter() - began)
    assert restored.snapshot() == snap, "a restored engine snapshots other bytes"
    state = decode(snap, engine.grid.cells)
    pickled = pickle.dumps(state, pickle.HIGHEST_PROTOCOL)
    return {
        "snapshot": best_of(reps, restored.snapshot),
        "restore": restore,
        "pickle": best_of(reps, lambda: pickle.dumps(state, pickle.HIGHEST_PROTOCOL)),
        "unpickle": best_of(reps, lambda: pickle.loads(pickled)),
        "bytes": len(snap),
        "packed": len(pack_state(0, restored)),
        "records": restored.stats.records,
        "open": len(restored.tracker.open),
        "buffered": len(state.buffer),
        "seen": len(state.seen),
    }


def a_day(snap: bytes, window_min: float, minutes: int) -> bytes:
    """The snapshot as it would be once the dedup window is full of the same fires' readings:
    its `seen` ids repeated back in time over the window (incidents.dedup_window + grace)."""
    doc = orjson.loads(snap)
    seen, span = doc["seen"], 60 * minutes
    past = [
        [t - span * k, f"{i.split(':')[0]}:{int(t) - span * k}"]
        for k in range(int(window_min // minutes) - 1, 0, -1)
        for t, i in seen
    ]
    doc["seen"] = past + seen
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


# -- the province: grid, devices, stream ----------------------------------------------------
def write_grid(path: Path, cells: int, districts: int, seed: int) -> list[str]:
    """Voronoi cells in villages, townships and districts (each the nearest seed of the level
    below), written as GeoJSON; returns the district names."""
    rng = np.random.default_rng(seed)
    geoms = voronoi_cells(cells, seed)
    counts = (max(1, cells // 20), max(1, cells // 200), districts)
    seeds = [shapely.points(rng.uniform(AREA[:2], AREA[2:], (k, 2))) for k in counts]
    near = [shapely.STRtree(s).query_nearest for s in seeds]
    village = near[0](shapely.centroid(geoms), all_matches=False)[1]
    township = near[1](seeds[0], all_matches=False)[1][village]
    district = near[2](seeds[1], all_matches=False)[1][township]
    risk = rng.choice(["low", "medium", "high"], len(geoms), p=[0.5, 0.3, 0.2]).tolist()
    props = [
        {"id": f"C{i:06d}", "district": f"D{d + 1:02d}", "township": f"T{t + 1:03d}",
         "village": f"V{v + 1:04d}", "team": f"team-V{v + 1:04d}", "risk": risk[i]}
        for i, (v, t, d) in enumerate(zip(village, township, district, strict=True))
    ]  # fmt: skip
    features = [
        b'{"type":"Feature","properties":%s,"geometry":%s}' % (orjson.dumps(p), g.encode())
        for p, g in zip(props, shapely.to_geojson(geoms).tolist(), strict=True)
    ]
    path.write_bytes(b'{"type":"FeatureCollection","features":[%s]}' % b",\n".join(features))
    return sorted({p["district"] for p in props})


def fire_places(n: int, spacing_km: float, rng: np.random.Generator) -> np.ndarray:
    """`n` (lon, lat) on a lattice over the area, no two closer than `spacing_km`."""
    minx, miny, maxx, maxy = AREA
    dlat = spacing_km / 110.574
    dlon = spacing_km / (111.320 * np.cos(np.radians(max(abs(miny), abs(maxy)))))
    xs, ys = np.arange(minx + dlon / 2, maxx, dlon), np.arange(miny + dlat / 2, maxy, dlat)
    if len(xs) * len(ys) < n:
        raise SystemExit(f"--incidents {n}: only {len(xs) * len(ys)} places {spacing_km} km apart")
    lattice = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    return lattice[rng.choice(len(lattice), n, replace=False)]


def stream(args: argparse.Namespace, child: IO[bytes], batch: int, parts: int) -> None:
    """Every device once a minute, in event-time order, in getmany-sized frames by partition."""
    from aiokafka.partitioner import murmur2

    rng, n = np.random.default_rng(1), args.devices
    names = [f"s{i + 1:07d}".encode() for i in range(n)]
    lon, lat = rng.uniform(AREA[:2], AREA[2:], (n, 2)).T
    fire = np.zeros(n, bool)
    fire[np.linspace(0, n - 1, args.incidents).astype(np.int64)] = True
    lon[fire], lat[fire] = fire_places(args.incidents, spacing_km(), rng).T
    partition = np.array([(murmur2(k) & 0x7FFFFFFF) % parts for k in names], np.int8)
    phase = rng.integers(0, 60, n)
    order = np.argsort(phase, kind="stable")
    base = int(START.timestamp())
    for minute in range(args.minutes):
        chunks = np.array_split(order, -(-n // batch))
        for k, rows in enumerate(chunks):
            t, hot, size = base + 60 * minute + phase[rows], fire[rows], len(rows)
            temp = np.where(hot, rng.uniform(65, 95, size), rng.uniform(8, 32, size))
            co = np.where(hot, rng.uniform(60, 250, size), rng.uniform(0, 8, size))
            hum = rng.uniform(35, 95, size)
            stamp = {s: _local(s) for s in np.unique(t).tolist()}
            frame = []
            for p in range(parts):
                sel = partition[rows] == p
                body = zip(*(a[sel].tolist() for a in (rows, t, temp, co, hum)), strict=True)
                lines = (
                    LINE % (names[d], s, names[d], stamp[s], lat[d], lon[d], a, b, c)
                    for d, s, a, b, c in body
                )
                frame.append((p, b"\n".join(lines)))
            pickle.dump((frame, k == len(chunks) - 1), child, pickle.HIGHEST_PROTOCOL)
    pickle.dump(None, child)
    child.flush()


def spacing_km() -> float:
    """Fires further apart than an incident's merge radius and the corroboration radius."""
    rules = load_rules(RULES)
    return 1.05 * max(rules.incidents.merge_radius_km, rules.corroboration.radius_km)


def _local(epoch: int) -> bytes:
    return (datetime.fromtimestamp(epoch, UTC) + timedelta(hours=8)).strftime("%FT%T").encode()


# -- the run and its section -----------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=10_000, help="fires, one device each")
    parser.add_argument("--minutes", type=int, default=14, help="of event time (> the grace)")
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--districts", type=int, default=40, help="district seeds: the regions")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(sys.stdin.buffer, sys.stdout.buffer)
    began = time.perf_counter()
    pipe = subprocess.PIPE
    child = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=pipe, stdout=pipe)
    stdin, stdout = child.stdin, child.stdout
    assert stdin is not None and stdout is not None
    from aiokafka.partitioner import murmur2

    from firewatch.stream.locate import LOCATE_BATCH
    from firewatch.stream.worker import INCIDENT_BATCH

    rules = load_rules(RULES)
    window = (rules.incidents.dedup_window + rules.incidents.grace).total_seconds() / 60
    with tempfile.TemporaryDirectory() as tmp:
        grid, cache = Path(tmp) / "province.geojson", Path(tmp) / "cache"
        districts = write_grid(grid, args.cells, args.districts, seed=0)
        load_index(load_grid(grid), cache)  # the worker reads it from the cache
        prepared = time.perf_counter() - began
        parts = Settings().kafka_partitions
        route = {d.encode(): (murmur2(d.encode()) & 0x7FFFFFFF) % parts for d in districts}
        clock = START + timedelta(minutes=args.minutes + 1)
        config = dict(grid=grid, cache=cache, clock=clock, route=route, take=INCIDENT_BATCH)
        config |= dict(incidents=args.incidents, window=window, minutes=args.minutes)
        try:
            pickle.dump(config, stdin)
            stream(args, stdin, LOCATE_BATCH, parts)
            stdin.close()
        except BrokenPipeError:
            pass  # the worker failed: its exit code says so
        output = stdout.read()
        if child.wait():
            raise SystemExit(f"the worker process failed (exit code {child.returncode})")
    r = orjson.loads(output) | {"batches": (LOCATE_BATCH, INCIDENT_BATCH)}
    section = render(args, r, rules.incidents.grace.total_seconds() / 60, window)
    took = time.perf_counter() - began
    section += f"\nThe run took {took:.0f} s ({prepared:.0f} s of it the grid and its index).\n"
    print(section)
    if not args.no_readme:
        write_section("Scale", section)


def render(args: argparse.Namespace, r: dict[str, Any], grace: float, window: float) -> str:
    secs, m = r["secs"], r["regions"]
    worker_s = sum(secs.values())
    rows = [(f"{k} ({r['names'][k]})", x) for k, x in m.items()]
    rows.append((f"{r['names']['busiest']}, its dedup window full (built, see below)", r["day"]))
    table = "\n".join(
        f"| {name} | {x['records']:,} | {x['open']:,} | {x['buffered']:,} | {x['seen']:,} | "
        f"{x['bytes'] / MB:.2f} / {x['packed'] / MB:.2f} MB | **{x['snapshot'] * 1e3:.1f} ms** | "
        f"{x['snapshot'] / x['pickle']:.1f} | {x['restore'] * 1e3:.1f} ms | "
        f"{x['restore'] / x['unpickle']:.1f} |"
        for name, x in rows
    )
    steady = r["samples"][int(grace) + 1 :]  # minutes after the first releases
    growth = "too few minutes past the grace period to tell (--minutes)."
    if len(steady) >= 3:
        rss, seen, heap = (
            np.polyfit(np.arange(len(steady)), c, 1)[0] for c in zip(*steady, strict=True)
        )
        held_seen, n_seen, held_heap, n_heap = r["held"]
        held, each = held_seen + held_heap, held_seen / n_seen + held_heap / max(n_heap, 1)
        growth = GROWTH.format(
            n=len(steady), rss=rss / MB, seen=seen, heap=heap, held=held / MB, each=each,
            hours=window / 60, day=each * seen * window / 2**30,
        )  # fmt: skip
    ok = {True: "met", False: "**not met**"}
    return SECTION.format(
        **vars(args), lines=r["lines"], rate=args.devices / 60, spacing=spacing_km(),
        grace=grace, count=r["count"], machine=describe(), peak=r["peak"] / MB,
        maxrss=r["maxrss"] / MB, inherited=r["inherited"] / MB, loaded=r["loaded"] / MB,
        ratio=r["peak"] / r["loaded"], after=r["after"] / MB, total=r["total"] / MB,
        packed=r["packed"] / MB, speed=r["lines"] / worker_s,
        bare=r["lines"] / (worker_s - secs["checkpoints"]), events=r["events"],
        shares=", ".join(f"{k} {v / worker_s:.0%}" for k, v in secs.items()),
        checkpoints=r["checkpoints"], each=secs["checkpoints"] / max(r["checkpoints"], 1) * 1e3,
        table=table, growth=growth, peak_ok=ok[r["peak"] < 2 * 2**30],
        busy_ok=ok[m["busiest"]["snapshot"] < 0.05], day_ok=ok[r["day"]["snapshot"] < 0.05],
        locate_batch=r["batches"][0], take=r["batches"][1],
    )  # fmt: skip


SECTION = """## Scale

`python benchmarks/bench_scale.py`: one worker's memory and state at province scale, without
Kafka. {devices:,} sensors spread uniformly over a synthetic province report once a
minute of event time for {minutes} minutes ({lines:,} lines; {rate:,.0f}/s of event time).
{incidents:,} of them stand at fires on a lattice {spacing:.1f} km apart (beyond the merge and
corroboration radii) and read over the fire threshold at every reading: each fire opens one
incident (`sensor.repeat`) once its second reading is past the {grace:.0f} min grace period, and
every later reading joins it. Grid: {cells:,} Voronoi cells over 2.5 x 2 degrees
(benchmarks/synthetic_grid.py; about 1 km² each, as in the Qujiang grid) in villages, townships
and {count} districts of uneven size, each the nearest seed of the level below; the districts are
the regions (`incidents.region_level`). Device health is on (rules/ as shipped): each region's
state also holds its devices and their records waiting for the watermark (about ten a device at a
reading a minute and 10 min of grace), as packed columns (state version 5).

The worker is a fresh child process, so the memory is its own; the benchmark's main process is the
broker and the devices (it makes the lines and pipes them over). The worker keeps the memory it
frees, as `firewatch worker` does (stream/heap.py: snapshots are not faulted in again each
checkpoint; since 2026-12-05). It loads the grid, its
locate index (from the cache, as a restarted `firewatch worker` does) and the rules with
runtime.engine_factory, then drives one `stages.Worker` as stream/locate.py and stream/worker.py
do. Each frame is one `getmany` ({locate_batch:,} records in event-time order), split by detection
partition as Kafka's default partitioner places device-id keys (4 partitions), each part through
`Worker.locate`; the located messages go to the located partition of their region key (murmur2),
then a progress marker to each partition. `Worker.incidents` then takes them by partition, at most
{take} at a time, as the agent takes what has arrived, reading saved states from the table; its
events are serialised as the agent publishes them. When one is due (`snapshot_every`, 1 s, after
the last, or 10 times as long as the last one's snapshots took: stream/checkpoint.py) the stage's
own `Checkpoints` save the changed regions to an in-memory table whose changelog delivers at
once, as Faust's memory:// store keeps them. Not
included: the Kafka clients (buffers, fetching, decoding), Faust (its app, the changelog
producer), the metrics. The worker's clock reads the end of the stream. Checked at the end:
{incidents:,} incidents open, no rejects, nothing outside the grid, each restored engine
snapshots the same bytes.

Machine: {machine}

- peak RSS of the worker (VmHWM): **{peak:,.0f} MB** (ru_maxrss {maxrss:,.0f} MB, which would
  include the parent's {inherited:,.0f} MB at the worker's start: Linux carries it over exec);
  {after:,.0f} MB after the stream
- baseline, same process: grid, index and rules loaded, no stream yet: {loaded:,.0f} MB; peak /
  baseline **{ratio:.2f}**
- all {count} regions' snapshots: {total:.1f} MB; in the table (zlib level 1): {packed:.1f} MB
- `Worker.locate` + `Worker.incidents` + checkpoints: **{speed:,.0f} records/s** ({shares};
  {checkpoints} checkpoints of {each:.0f} ms on average; {bare:,.0f}/s without them);
  {events:,} incident and device events (each sensor's `device_new`)

Regions: the busiest (largest snapshot) and the median. `Engine.snapshot()`, and `Engine.restore`
into a fresh engine, best of 5 each (3 in the last row). Baseline in the same run: pickle
(protocol 5) of the same state decoded (engine/state.py `decode`): the objects alone, with no
format and no validation; the x columns are firewatch / pickle.

| region | records | open | buffered | seen ids | snapshot / packed | snapshot | x | restore | x |
|---|---|---|---|---|---|---|---|---|---|
{table}

Targets: peak RSS under 2 GB: {peak_ok}. Snapshot of the busiest region under 50 ms: {busy_ok}
({day_ok} once its dedup window is full, last row).

What grows: {growth}
"""
GROWTH = """in the last {n} minutes RSS grew {rss:.1f} MB a minute of event time, while
{seen:,.0f} fire signals a minute entered the dedup window (`Engine._seen` and `_seen_order`, the
snapshot's `seen`) and the tracker's deadline heap (`Tracker._deadlines`, one entry per open
incident) changed by {heap:,.0f} entries a minute. At the end these two held {held:.0f} MB of Python
objects ({each:.0f} bytes a signal). The window lets a signal's id go after dedup_window + grace
({hours:.1f} h): these fires kept up that long fill it to about {day:.2f} GB (projected from those
bytes, not measured), and take the busiest region's snapshot to the last row of the table (built
from its snapshot, its `seen` ids repeated back in time over the window; restored and measured).
Before 2026-12-03 the window was inactivity + grace (24.2 h): 4.1 GB projected, and the busiest
region's snapshot 171 ms (restore 2.8 s) once full; the deadline heap held one entry per joining
signal for 24 h."""

if __name__ == "__main__":
    main()
