"""The way to the processor: ids, delays, late records, duplicates, malformed lines, arrival order.

- about 10% of records carry no "id" (the engine then hashes the content);
- each record arrives 0-30 s after it was observed; about 2% are late by 1-9 minutes (within the
  engine's 10-minute grace period) and five by 20-40 minutes (beyond it): two flame reports of
  cameras watching a fire (the fire's incident is open by then) and three normal sensor readings;
- about 0.5% of records, and five flame reports, are sent twice: the copy is the same line,
  arriving 5 s to 10 min later;
- ten malformed lines, spread evenly over the window, one of each kind in MALFORMED.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from firewatch.sim.columns import Column, join
from firewatch.sim.records import Specials
from firewatch.sim.sensors import BoolArray, IntArray, SensorLines
from firewatch.sim.summary import DuplicateLine, LateLine, MalformedLine
from firewatch.sim.timefmt import Stamps

MISSING_ID_SHARE = 0.10
LATE_SHARE = 0.02
BEYOND_GRACE = 5  # records late by 20-40 minutes...
FLAMES_BEYOND_GRACE = 2  # ...of which flame reports
FLAMES_TWICE = 5  # flame reports sent twice, besides the random share
MAX_DELAY_MS = 30_000  # a record that is not late arrives within 30 s
GRACE_MS = 600_000  # the engine's grace period for late records
DUPLICATE_SHARE = 0.005
MALFORMED = (
    "truncated_json",
    "naive_timestamp",
    "nan_latitude",
    "unknown_source",
    "missing_device_id",
    "garbage_bytes",
    "confidence_out_of_range",
    "latitude_out_of_range",
    "wrong_type",
    "not_json",
)
CHUNK = 65_536


@dataclass(frozen=True)
class Delivery:
    """The lines in arrival order, and what happened on the way."""

    order: IntArray  # entries in arrival order: records, then duplicate copies, then malformed
    n_records: int
    dup_source: IntArray  # the record each duplicate copy repeats
    has_id: BoolArray  # per record
    sensor_lines: SensorLines
    special_lines: list[str]  # camera and satellite records, serialised (bytes as latin-1)
    malformed_lines: list[bytes]
    by_source: dict[str, int]
    malformed: list[MalformedLine]
    duplicates: list[DuplicateLine]
    late: list[LateLine]

    def lines(self) -> Iterator[bytes]:
        """The lines (no newline) in arrival order."""
        for chunk in self.chunks():
            yield from chunk.split(b"\n")[:-1]  # no line holds a newline (see _malformed)

    def chunks(self) -> Iterator[bytes]:
        """The lines in arrival order, each ending in a newline, CHUNK lines at a time."""
        n, n_bulk, n_dup = self.n_records, self.sensor_lines.bulk.size, len(self.dup_source)
        whole = self.special_lines + [line.decode("latin-1") for line in self.malformed_lines]
        newline = ["\n"]
        malformed_at = len(self.special_lines) - n - n_dup  # malformed entry -> index in whole
        for lo in range(0, len(self.order), CHUNK):
            entry = self.order[lo : lo + CHUNK]
            record = np.where(entry < n, entry, -1)
            copy = (entry >= n) & (entry < n + n_dup)
            record[copy] = self.dup_source[entry[copy] - n]
            reading = np.where(record < n_bulk, record, -1)  # -1: not a sensor reading
            line = np.where(record < 0, entry + malformed_at, record - n_bulk)  # in `whole`
            line[reading >= 0] = -1
            has_id = self.has_id[np.maximum(record, 0)]
            special = Column(whole, line)
            ends = Column(newline, np.where(line >= 0, 0, -1))
            yield join([*self.sensor_lines.columns(reading, has_id), special, ends])


def deliver(
    sensor_lines: SensorLines,
    specials: Specials,
    stamps: Stamps,
    window: tuple[int, int],
    rng: np.random.Generator,
    silent: BoolArray | None = None,
) -> Delivery:
    """Send the bulk sensor readings and the special (camera, satellite) records on their way.
    `silent` bulk readings (outages.py) are never sent, nor copies of them; the draws are made
    for them all the same."""
    n_bulk = sensor_lines.bulk.size
    special_t = np.array(specials.times, dtype=np.int64)
    observed = np.concatenate([sensor_lines.bulk.t.ravel(), special_t])
    n = len(observed)
    has_id = rng.random(n) >= MISSING_ID_SHARE
    flames = n_bulk + specials.flames
    delay = _delays(n, sensor_lines.bulk.special.ravel(), flames, rng)
    arrival = observed * 1000 + delay
    dup_source = _union(
        rng.choice(n, size=round(n * DUPLICATE_SHARE), replace=False),
        rng.choice(flames, size=min(FLAMES_TWICE, len(flames)), replace=False),
    )
    dup_arrival = arrival[dup_source] + rng.integers(5_000, 600_001, size=len(dup_source))
    bad_arrival, bad_lines = _malformed_lines(sensor_lines, window, rng)
    order = _arrival_order(np.concatenate([arrival, dup_arrival, bad_arrival]))
    gone = np.zeros(len(order), dtype=bool)  # entries never sent: silent readings, their copies
    if silent is not None:
        gone[:n_bulk] = silent
        gone[n : n + len(dup_source)] = gone[dup_source]
        order = order[~gone[order]]
    line_of = np.zeros(len(gone), dtype=np.int64)
    line_of[order] = np.arange(1, len(order) + 1)
    sources = specials.sources
    sent_dups = dup_source[~gone[n : n + len(dup_source)]]
    sent_bulk = n_bulk - int(gone[:n_bulk].sum())
    counts = Counter({"sensor": sent_bulk + int((sent_dups < n_bulk).sum())})
    counts.update(sources)
    counts.update(sources[i - n_bulk] for i in sent_dups.tolist() if i >= n_bulk)

    return Delivery(
        order=order,
        n_records=n,
        dup_source=dup_source,
        has_id=has_id,
        sensor_lines=sensor_lines,
        special_lines=specials.lines(has_id[n_bulk:]),
        malformed_lines=bad_lines,
        by_source={s: counts[s] for s in ("sensor", "camera", "satellite")},
        malformed=[
            MalformedLine(line=int(line_of[n + len(dup_source) + i]), kind=kind)
            for i, kind in enumerate(MALFORMED)
        ],
        duplicates=[
            DuplicateLine(line=line, original_line=original)
            for line, original in zip(
                line_of[n : n + len(dup_source)].tolist(), line_of[dup_source].tolist(), strict=True
            )
            if line  # 0: a copy of a silent reading, never sent
        ],
        late=_late_lines(sensor_lines, specials, stamps, observed, delay, line_of[:n]),
    )


def _arrival_order(arrival: IntArray) -> IntArray:
    """np.argsort(arrival, kind="stable"), three times faster: ties are broken by position in a
    key of its own for each entry, which numpy's default (SIMD) sort then orders alike."""
    n = len(arrival)
    if n == 0 or (int(arrival.max()) - int(arrival.min()) + 1) * n >= 2**63:
        return np.argsort(arrival, kind="stable")
    return np.argsort((arrival - arrival.min()) * n + np.arange(n))


def _late_lines(
    sensor_lines: SensorLines,
    specials: Specials,
    stamps: Stamps,
    observed: IntArray,
    delay: IntArray,
    line_of: IntArray,
) -> list[LateLine]:
    """The records that arrive more than MAX_DELAY_MS after they were observed, in line order."""
    late = np.flatnonzero((delay > MAX_DELAY_MS) & (line_of > 0))  # 0: never sent
    late = late[np.argsort(line_of[late])]
    n_bulk = sensor_lines.bulk.size

    def device(i: int) -> str:
        return sensor_lines.device(i) if i < n_bulk else specials.devices[i - n_bulk]

    return [
        LateLine(
            line=line,
            device_id=device(i),
            observed_at=stamps.at(t),
            delay_s=d / 1000,
            beyond_grace=d > GRACE_MS,
        )
        for i, line, t, d in zip(
            late.tolist(),
            line_of[late].tolist(),
            observed[late].tolist(),
            delay[late].tolist(),
            strict=True,
        )
    ]


def _union(a: IntArray, b: IntArray) -> IntArray:
    """np.union1d(a, b), without the import of numpy.ma that np.unique makes (40 ms)."""
    both = np.sort(np.concatenate([a, b]))
    first = np.ones(len(both), dtype=bool)
    first[1:] = both[1:] != both[:-1]
    return both[first]


def _delays(n: int, special: BoolArray, flames: IntArray, rng: np.random.Generator) -> IntArray:
    """Transmission delay (ms) of each record; the first len(special) are bulk sensor readings."""
    delay = rng.integers(0, MAX_DELAY_MS + 1, size=n)
    late = rng.random(n) < LATE_SHARE
    delay[late] = rng.integers(60_000, 540_001, size=int(late.sum()))
    flames = flames[~late[flames]]
    flames = rng.choice(flames, size=min(FLAMES_BEYOND_GRACE, len(flames)), replace=False)
    normal = np.flatnonzero(~special & ~late[: len(special)])
    normal = rng.choice(normal, size=min(BEYOND_GRACE - len(flames), len(normal)), replace=False)
    beyond = np.concatenate([flames, normal])
    delay[beyond] = rng.integers(1_200_000, 2_400_001, size=len(beyond))
    return delay


def _malformed_lines(
    sensor_lines: SensorLines, window: tuple[int, int], rng: np.random.Generator
) -> tuple[IntArray, list[bytes]]:
    """One line of each MALFORMED kind, with arrival times (ms) spread evenly over the window."""
    start_s, end_s = window
    span = (end_s - start_s) * 1000 / len(MALFORMED)
    arrival = [
        start_s * 1000 + int((i + rng.uniform(0.1, 0.9)) * span) for i in range(len(MALFORMED))
    ]
    template = _template(sensor_lines, rng)
    return np.array(arrival, dtype=np.int64), [_malformed(k, template(), rng) for k in MALFORMED]


def _template(sensor_lines: SensorLines, rng: np.random.Generator) -> Any:
    """A source of sensor-like records to break."""
    size = sensor_lines.bulk.size

    def make() -> dict[str, Any]:
        if size:
            return sensor_lines.record(int(rng.integers(size)))
        return {
            "source": "sensor",
            "device_id": "S-0000",
            "observed_at": sensor_lines.stamps.iso(0),
            "lat": 28.9,
            "lon": 118.9,
            "readings": {"temperature_c": 20.0, "co_ppm": 1.0, "humidity_pct": 60.0},
        }

    return make


def _malformed(kind: str, record: dict[str, Any], rng: np.random.Generator) -> bytes:
    """A line that no detection model accepts, of the given kind."""
    record = {k: v for k, v in record.items() if k != "id"}
    if kind == "garbage_bytes":
        noise = bytes(b for b in rng.integers(0, 256, size=48).tolist() if b not in (10, 13))
        return b"\xff\xfe" + noise
    if kind == "not_json":
        fields = (record[k] for k in ("device_id", "observed_at", "lat", "lon"))
        return ",".join(str(f) for f in fields).encode()
    if kind == "nan_latitude":
        record["lat"] = float("nan")
        return json.dumps(record, separators=(",", ":")).encode()
    if kind == "naive_timestamp":
        record["observed_at"] = str(record["observed_at"])[:19]
    elif kind == "unknown_source":
        record["source"], record["device_id"] = "drone", "UAV-07"
    elif kind == "missing_device_id":
        del record["device_id"]
    elif kind == "confidence_out_of_range":
        del record["readings"]
        record.update(source="camera", device_id="CAM-00", confidence=1.7, label="smoke")
    elif kind == "latitude_out_of_range":
        record["lat"], record["lon"] = record["lon"], record["lat"]
    elif kind == "wrong_type":
        record["readings"] = "n/a"
    line = orjson.dumps(record)
    return line[: len(line) * 2 // 3] if kind == "truncated_json" else line
