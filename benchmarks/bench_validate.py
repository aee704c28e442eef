"""Records per second of validate_lines, clean and with 1% bad lines, against per-line validation.

    .venv/bin/python benchmarks/bench_validate.py [--records 200000] [--batch 5000] [--repeat 7]

Input: realistic JSONL lines (85% sensor readings, 10% camera, 5% satellite), then the same with 1%
of them replaced by bad lines of twelve kinds (truncated, not JSON, not UTF-8, not an object,
missing field, NaN latitude, longitude out of range, naive or unparsable timestamp, unknown source,
empty device_id, latitude as text). Each figure is the best of --repeat rounds.

Also measured: validate_lines with the garbage collector left running during the batch (it pauses
it), after gc.freeze(), and one DETECTIONS.validate_json call for a whole batch (clean input only).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pydantic
from pydantic import TypeAdapter, ValidationError

from firewatch.ingest import validate
from firewatch.ingest.validate import SUB_BATCH, classify, make_reject, validate_lines
from firewatch.model import DETECTIONS, Detection


def good_line(rng: random.Random, i: int) -> bytes:
    record: dict[str, object] = {
        "id": f"msg-{i:08d}",
        "device_id": f"dev-{rng.randrange(20000):05d}",
        "observed_at": f"2024-07-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i * 7 % 60:02d}+08:00",
        "lat": round(28.8 + rng.random() * 0.4, 6),
        "lon": round(118.6 + rng.random() * 0.6, 6),
    }
    kind = rng.random()
    if kind < 0.85:
        readings = {
            "temp_c": round(15 + rng.random() * 30, 2),
            "rh_pct": round(rng.random() * 100, 1),
            "co_ppm": round(rng.random() * 30, 2),
            "smoke_obs_pct_m": round(rng.random() * 5, 3),
            "battery_v": round(3.3 + rng.random(), 2),
        }
        record |= {"source": "sensor", "readings": readings}
    elif kind < 0.95:
        record |= {
            "source": "camera",
            "confidence": round(rng.random(), 3),
            "label": rng.choice(["smoke", "flame"]),
            "bearing_deg": round(rng.random() * 360, 1),
            "camera_lat": 28.97,
            "camera_lon": 118.87,
        }
    else:
        record |= {
            "source": "satellite",
            "confidence": 0.6,
            "frp_mw": round(rng.random() * 50, 2),
            "scan_km": 0.39,
            "track_km": 0.36,
            "instrument": "VIIRS",
            "satellite": "NOAA20",
            "static": False,
        }
    return orjson.dumps(record)


BAD: list[Callable[[bytes], bytes]] = [
    lambda g: g[: len(g) // 2],  # truncated
    lambda g: b"{not json at all",
    lambda g: g.replace(b'"dev-', b'"dev-\xff', 1),  # not UTF-8
    lambda g: b"[1, 2, 3]",  # not an object
    lambda g: g.replace(b'"device_id"', b'"device"', 1),  # missing field
    lambda g: g.replace(b'"lat":', b'"lat":NaN,"x":', 1),
    lambda g: g.replace(b'"lon":', b'"lon":200,"x":', 1),
    lambda g: g.replace(b'+08:00"', b'"', 1),  # naive timestamp
    lambda g: g.replace(b'"observed_at":"', b'"observed_at":"yesterday ', 1),
    lambda g: g.replace(b'"source":"', b'"source":"drone', 1),
    lambda g: g.replace(b'"lat":', b'"device_id":"","lat":', 1),  # empty device_id (last key wins)
    lambda g: g.replace(b'"lat":', b'"lat":"north","x":', 1),
]


def make_lines(n: int, bad_share: float, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    lines = [good_line(rng, i) for i in range(n)]
    for k, i in enumerate(rng.sample(range(n), int(n * bad_share))):
        lines[i] = BAD[k % len(BAD)](lines[i])
    return lines


Runner = Callable[[list[bytes], int], tuple[int, int]]


def run_validate_lines(lines: list[bytes], batch: int) -> tuple[int, int]:
    valid = rejected = 0
    for start in range(0, len(lines), batch):
        chunk = lines[start : start + batch]
        detections, _, rejects = validate_lines(chunk, "bench", first_line=start + 1)
        valid += len(detections)
        rejected += len(rejects)
    return valid, rejected


def run_gc_left_running(lines: list[bytes], batch: int) -> tuple[int, int]:
    paused = validate.gc_paused
    validate.gc_paused = contextlib.nullcontext  # type: ignore[assignment]
    try:
        return run_validate_lines(lines, batch)
    finally:
        validate.gc_paused = paused


def run_gc_frozen(lines: list[bytes], batch: int) -> tuple[int, int]:
    gc.freeze()
    try:
        return run_validate_lines(lines, batch)
    finally:
        gc.unfreeze()


def run_one_call_per_batch(lines: list[bytes], batch: int) -> tuple[int, int]:
    """One DETECTIONS.validate_json call per batch, gc paused: clean input only."""
    valid = 0
    with validate.gc_paused():
        for start in range(0, len(lines), batch):
            joined = b"[" + b",".join(lines[start : start + batch]) + b"]"
            valid += len(DETECTIONS.validate_json(joined, strict=True))
    return valid, 0


ONE = TypeAdapter(Detection)


def run_per_line(lines: list[bytes], batch: int) -> tuple[int, int]:
    """The baseline: one validate_json call per line, gc paused, a batch of results kept alive as
    the engine keeps them, and a Reject with its reason for each bad line."""
    valid = rejected = 0
    with validate.gc_paused():
        for start in range(0, len(lines), batch):
            detections, rejects = [], []
            for n, line in enumerate(lines[start : start + batch], start=start + 1):
                try:
                    detections.append(ONE.validate_json(line, strict=True))
                except ValidationError as exc:
                    problem = classify(exc.errors(include_url=False))
                    rejects.append(make_reject("bench", n, None, line, problem))
            valid += len(detections)
            rejected += len(rejects)
    return valid, rejected


CASES: list[tuple[str, Runner, bool]] = [  # name, runner, runs on bad lines too
    ("validate_lines", run_validate_lines, True),
    ("  same, gc left running", run_gc_left_running, True),
    ("  same, after gc.freeze()", run_gc_frozen, True),
    ("one validate_json call per batch", run_one_call_per_batch, False),
    ("per-line baseline", run_per_line, True),
]


def measure(lines: list[bytes], batch: int, repeat: int, cases: list[tuple[str, Runner]]) -> None:
    """Print records/s per case: the best of `repeat` rounds, the cases interleaved in each round
    so that a noisy neighbour on the machine weighs on all of them alike."""
    best = {name: float("inf") for name, _ in cases}
    counts = {name: (0, 0) for name, _ in cases}
    for _ in range(repeat):
        for name, run in cases:
            start = time.perf_counter()
            counts[name] = run(lines, batch)
            best[name] = min(best[name], time.perf_counter() - start)
    for name, _ in cases:
        valid, rejected = counts[name]
        print(f"{name:<36}{len(lines) / best[name]:>12,.0f}{valid:>10,}{rejected:>10,}")
    ratio = best["per-line baseline"] / best["validate_lines"]
    print(f"{'ratio validate_lines / per-line':<36}{ratio:>11.2f}x")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, pydantic {pydantic.VERSION}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"bench_validate  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(f"{args.records:,} lines in batches of {args.batch:,}", end="")
    print(f" (sub-batches of {SUB_BATCH}), best of {args.repeat}")
    for share in (0.0, 0.01):
        lines = make_lines(args.records, share)
        print(f"\n{share:.0%} bad lines{'records/s':>29}{'valid':>10}{'rejected':>10}")
        cases = [(name, run) for name, run, on_bad in CASES if on_bad or not share]
        measure(lines, args.batch, args.repeat, cases)


if __name__ == "__main__":
    main()
