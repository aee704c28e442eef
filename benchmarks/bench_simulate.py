"""Lines/s of `firewatch simulate` writing its stream to a file, against the engine reading them.

    .venv/bin/python benchmarks/bench_simulate.py [--repeat 5] [--no-readme]

Scenarios (seed 1, the Qujiang grid):
- default: `firewatch simulate` with its defaults (400 sensors, 24 h, 24 cameras, 5 fires);
- 10x sensors: the same with 4,000 sensors;
- demo season: what `make demo` simulates (`write_season`: 10 days, 330 fires, 30 sensors, in
  episodes of 40 fires; its figure includes its one read of the grid).

Steady state: `build_stream` and `SimStream.write` into a real file in a temporary folder, the
grid already read and everything imported; best of --repeat runs. Start-up, apart: a fresh
process importing `firewatch.simulate` and reading the grid, then its first run of the default
scenario; and the `firewatch simulate` command's wall time (the interpreter, the command line's
imports, the grid, the run).

Baseline, same run, same lines: the engine reading them (`Engine.process_lines` in batches of
5,000, as bench_engine.py and replay feed it; best of 3). The simulator must not be what a
pipeline waits for (#11): target >= 100,000 lines/s on every scenario, the demo season
included, and more than the engine. Single process, single thread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import GRID, engine_factory, run_engine  # noqa: E402
from machine import describe, write_section  # noqa: E402

from firewatch.sim.defaults import DEMO_DAYS, DEMO_FIRES, DEMO_SEED, DEMO_SENSORS  # noqa: E402
from firewatch.sim.season import write_season  # noqa: E402
from firewatch.sim.world import SimGrid, read_grid  # noqa: E402
from firewatch.simulate import build_stream  # noqa: E402

TARGET = 100_000  # lines/s, on every scenario
BATCH = 5000  # the engine's batches
BEFORE = """Before (2026-12-03 10:11 UTC, same machine, this benchmark on the code before the
change, commit ad28abe): default 538,154 lines/s (build 0.062 s, write 0.046 s; engine 164,699,
ratio 3.27), 10x sensors 576,348 lines/s (0.345 / 0.660 s; engine 135,281, ratio 4.26), demo
season 45,051 lines/s (1.325 s; engine 27,591, ratio 1.63); first default run 0.15 s after a grid
read of 0.12 s (214,004 lines/s); `firewatch simulate` 0.95 s. The demo season, by stage (process
time, best of 5, 10:10 UTC): placing its 330 fires 0.41 s (chunks of tries decoded from the
generator's words, every try's distances computed against every fire, camera and the heat
source), the fires' signals 0.29 s (each camera report four scalar numpy draws, a clip, a
np.hypot and a dict), the camera towers' k-means 0.21 s (a mean per centre per step), reading the
grid 0.11 s (shape() per cell, union_all), delivering and writing 0.09 s, noise 0.03 s; 1.26 s in
all."""


@dataclass
class Timing:
    lines: int
    build_s: float  # 0 where the scenario cannot tell building from writing (the season)
    write_s: float

    @property
    def total_s(self) -> float:
        return self.build_s + self.write_s

    @property
    def rate(self) -> float:
        return self.lines / self.total_s

    def split(self) -> str:
        if not self.build_s:
            return f"{self.total_s:.3f} s in all"
        return f"build {self.build_s:.3f} s, write {self.write_s:.3f} s"


def simulate_once(grid: SimGrid, path: Path, options: dict[str, Any]) -> Timing:
    start = time.perf_counter()
    stream = build_stream(grid, **options)
    built = time.perf_counter()
    with path.open("wb") as out:
        stream.write(out)
    return Timing(stream.summary.lines, built - start, time.perf_counter() - built)


def season_once(path: Path) -> Timing:
    start = time.perf_counter()
    episodes = write_season(
        path, GRID, seed=DEMO_SEED, days=DEMO_DAYS, fires=DEMO_FIRES, sensors=DEMO_SENSORS
    )
    return Timing(sum(e.lines for e in episodes), 0.0, time.perf_counter() - start)


def best(repeat: int, run: Callable[[], Timing]) -> Timing:
    return min((run() for _ in range(repeat)), key=lambda t: t.total_s)


def engine_rate(lines: list[bytes], make: Callable[[], Any], repeat: int) -> float:
    seconds = min(run_engine(make(), lines, BATCH)[0] for _ in range(repeat))
    return len(lines) / seconds


STARTUP = """
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from firewatch.simulate import build_stream
from firewatch.sim.world import read_grid
imported = time.perf_counter()
grid = read_grid(Path(sys.argv[1]))
read = time.perf_counter()
stream = build_stream(grid)
with open(sys.argv[2], "wb") as out:
    stream.write(out)
print(json.dumps([imported - start, read - imported, time.perf_counter() - read]))
"""


def startup(folder: Path, repeat: int) -> tuple[float, float, float, float]:
    """Fresh processes: (imports, grid read, first default run) in seconds, best of `repeat` by
    their sum; and the `firewatch simulate` command's wall time, best of `repeat`."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", STARTUP, str(GRID), str(folder / "startup.jsonl")],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout))
    imports, grid, first = min(runs, key=sum)
    wall = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "firewatch",
            "simulate",
            "--out",
            str(folder / "cli.jsonl"),
        ]
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        wall = min(wall, time.perf_counter() - start)
    return imports, grid, first, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best of)")
    parser.add_argument("--engine-repeat", type=int, default=3)
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args()
    machine = describe()
    print(f"machine: {machine}")
    grid = read_grid(GRID)
    scenarios: list[tuple[str, str, Callable[[Path], Timing]]] = [
        ("default", "400 sensors, 24 h, 5 fires", lambda p: simulate_once(grid, p, {})),
        (
            "10x sensors",
            "4,000 sensors, 24 h, 5 fires",
            lambda p: simulate_once(grid, p, {"sensors": 4000}),
        ),
        (
            "demo season",
            f"{DEMO_SENSORS} sensors, {DEMO_DAYS:g} days, {DEMO_FIRES} fires",
            season_once,
        ),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make = engine_factory(folder / "cache")
        for name, what, run in scenarios:
            path = folder / f"{name.replace(' ', '-')}.jsonl"
            timing = best(args.repeat, partial(run, path))
            lines = path.read_bytes().split(b"\n")[:-1]
            assert len(lines) == timing.lines
            engine = engine_rate(lines, make, args.engine_repeat)
            rows.append((name, what, timing, engine))
            print(
                f"{name:<12} {timing.lines:>9,} lines  simulate {timing.rate:>10,.0f} lines/s "
                f"({timing.split()})  engine {engine:>9,.0f} lines/s  "
                f"simulate / engine {timing.rate / engine:.2f}"
            )
        imports, grid_s, first, wall = startup(folder, args.repeat)
    default_lines = rows[0][2].lines
    print(
        f"start-up: imports {imports:.2f} s, grid read {grid_s:.2f} s; first default run "
        f"{first:.2f} s ({default_lines / (grid_s + first):,.0f} lines/s with the grid read); "
        f"`firewatch simulate` wall time {wall:.2f} s"
    )
    lowest = min(rows, key=lambda row: row[2].rate)
    met = f"{'met' if lowest[2].rate >= TARGET else 'NOT met'} (lowest: {lowest[0]}, "
    met += f"{lowest[2].rate:,.0f} lines/s)"
    slower = [name for name, _, timing, engine in rows if timing.rate <= engine]
    print(f"target {TARGET:,} lines/s on every scenario: {met}")
    if not args.no_readme:
        write_section(
            "Simulator", section(machine, args, rows, (imports, grid_s, first, wall), met, slower)
        )


def section(
    machine: str,
    args: argparse.Namespace,
    rows: list[tuple[str, str, Timing, float]],
    start: tuple[float, float, float, float],
    met: str,
    slower: list[str],
) -> str:
    imports, grid_s, first, wall = start
    against = "The simulator is faster than the engine on every scenario"
    if slower:
        against = f"The simulator is NOT faster than the engine on: {', '.join(slower)}"
    table = "\n".join(
        f"| {name} ({what}) | {t.lines:,} | **{t.rate:,.0f}** | {t.split()} | {engine:,.0f} | "
        f"{t.rate / engine:.2f} |"
        for name, what, t, engine in rows
    )
    default_lines = rows[0][2].lines
    return f"""## Simulator

`python benchmarks/bench_simulate.py`: `firewatch simulate` writing its JSONL stream to a file
(`build_stream` then `SimStream.write`, seed 1, the Qujiang grid already read), best of
{args.repeat} runs, one process, one thread. Baseline, same run, same lines: the engine reading
them (`Engine.process_lines`, batches of {BATCH:,}, best of {args.engine_repeat}), the consumer
the simulator must keep ahead of. The demo season is `write_season` as `make demo` runs it
(episodes of 40 fires; its figure includes its one read of the grid).

Machine: {machine}. It is shared with other work (Kafka and API tests ran
beside these runs): figures vary by up to 2x from run to run, the demo season's and the engine's
most; compare within a run.

| scenario | lines | simulator lines/s | time | engine lines/s | simulator / engine |
|---|---|---|---|---|---|
{table}

Start-up, apart, in a fresh process: importing `firewatch.simulate` {imports:.2f} s, reading the
grid {grid_s:.2f} s; the first default run then takes {first:.2f} s
({default_lines / (grid_s + first):,.0f} lines/s counting the grid read). The `firewatch simulate`
command takes {wall:.2f} s of wall time, most of it the interpreter's start and imports.

Target >= {TARGET:,} lines/s on every scenario: {met}. {against}.
Where the time goes: in the 10x scenario (cProfile, 2026-12-03), writing is 55%: joining the
lines' pieces (`columns.join`: a numpy gather of some ten pieces per line, one `str.join`, one
encode); building 45%: the late lines' summaries (0.15 s for 11,500 pydantic models), the
readings' numpy draws (0.1 s), the pieces' tables. The demo season, by stage (process time,
best of 5, 2026-12-03 10:10 UTC): placing the fires 0.11 s, their signals 0.09 s (the cameras'
reports: two numpy calls a report, in the order the seed's stream has them), delivering and
writing 0.09 s, reading the grid 0.05 s (half of it GEOS checking that the cells are a coverage),
the towers' k-means 0.03 s, noise 0.03 s; 0.46 s in all.

What made the demo season faster, the bytes unchanged (cmp of 58 streams and 16 summaries against
the code before: 14 argument sets and 4 seasons on the Qujiang grid, 30 streams on 24 grids of six
districts, 10 more seasons and crowded runs; tests/sim/test_bytes.py pins digests): a fire's place
(sim/placement.py) from its 3,000 tries worked out at once (draws.rounds, now strided arithmetic on
the raw words), most of them settled by their anchor alone (a try lies within 0.6 km of its
sensor or cell centre, so an anchor more than that on one side of a rule settles all its tries),
a relax level whose anchors all fail skipped, the first remaining try tested in Python numbers
and the rest as arrays, then the one the loop stops at drawn for real; the cameras' reports
(signals.py) drawn as one standard_normal(3) and one random() a report, the same numbers as
rng.normal and rng.uniform, with their confidence and position worked out per fire as arrays, and
the camera records kept as columns and written from tables of text pieces whose numbers orjson
formats (sim/records.py); the towers' k-means with np.bincount means; sensors' heating in one
draw of size 2n; the grid read with one shapely call for its polygons, orjson, and GEOS's
coverage union where the cells are a valid coverage (the same polygon as union_all).

{BEFORE}
"""


if __name__ == "__main__":
    main()
