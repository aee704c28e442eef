"""The located topic's format (stream/wire.py): what the locate stage prepared comes out of the
incidents stage's decoding the same, so an engine fed through it decides exactly what a replay
decides; and a message this version cannot read is an error that says why."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from firewatch.engine.located import Located
from firewatch.ingest.validate import validate_lines
from firewatch.model import DeviceEvent, DeviceEventKind, IncidentEvent, LocatedBy
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.simulate import write_stream
from firewatch.stream import wire

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "data/grids/qujiang.geojson"


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> list[list[bytes]]:
    """A simulated day on the demo grid (fires, noise, late and duplicate lines), in batches."""
    path = tmp_path_factory.mktemp("wire") / "day.jsonl"
    write_stream(path, GRID, seed=11, hours=24, sensors=400, cameras=12, fires=4)
    lines = path.read_bytes().splitlines()
    return [lines[i : i + 2000] for i in range(0, len(lines), 2000)]


def settings() -> Settings:
    return Settings(grid=GRID, rules=ROOT / "rules", cache_dir=None)


def same(a: Located, b: Located) -> None:
    for name in ("t", "lat", "lon", "source"):
        assert np.array_equal(getattr(a.cols, name), getattr(b.cols, name)), name
    assert np.array_equal(a.cell, b.cell) and np.array_equal(a.strength, b.strength)
    assert np.array_equal(a.static, b.static) and a.signals == b.signals
    assert np.array_equal(a.device, b.device) and a.stations == b.stations


def test_through_the_wire_an_engine_decides_what_a_replay_decides(
    batches: list[list[bytes]],
) -> None:
    replayed, streamed = open_engine(settings()), open_engine(settings())
    replay_events, stream_events = [], []
    signals = sights = 0
    for lines in batches:
        detections, _, _ = validate_lines(lines, "day.jsonl")
        replay_events += replayed.process(detections)
        prepared = streamed.prepare(detections)
        signals += len(prepared.signals)
        sights += sum(sig.sight is not None for sig in prepared.signals.values())
        decoded = wire.decode(wire.encode(prepared))
        same(prepared, decoded)
        stream_events += streamed.process_located(decoded)
    replay_events += replayed.flush()
    stream_events += streamed.flush()
    assert signals > 50 and len(replay_events) > 10  # fires were seen, incidents opened
    assert sights > 10  # cameras' lines of sight went through (and placed incidents)
    placed = {e.located_by for e in stream_events if isinstance(e, IncidentEvent)}
    assert placed > {LocatedBy.DETECTION}
    # device health went through too: the devices and camera stations of every row
    assert any(e.event is DeviceEventKind.DEVICE_DOWN for e in stream_events)
    assert [e.model_dump() for e in stream_events] == [e.model_dump() for e in replay_events]
    assert streamed.stats.as_dict() == replayed.stats.as_dict()


def test_a_batch_located_on_another_grid_is_located_again(batches: list[list[bytes]]) -> None:
    """Workers of two configurations during a grid change: the cell indexes of the other grid
    mean nothing here, so the incidents stage locates the rows again (from their lat/lon)."""
    replayed, streamed = open_engine(settings()), open_engine(settings())
    replay_events, stream_events = [], []
    for lines in batches:
        detections, _, _ = validate_lines(lines, "day.jsonl")
        replay_events += replayed.process(detections)
        prepared = streamed.prepare(detections)
        foreign = Located(
            prepared.cols,
            np.zeros_like(prepared.cell),  # every row in cell 0 of "another grid"
            prepared.strength,
            prepared.static,
            {i: dataclasses.replace(s, cell=0) for i, s in prepared.signals.items()},
            "1-another-grid",
            prepared.device,
            prepared.stations,
        )
        stream_events += streamed.process_located(wire.decode(wire.encode(foreign)))
    assert [e.model_dump() for e in stream_events] == [e.model_dump() for e in replay_events]
    assert replay_events and streamed.stats.as_dict() == replayed.stats.as_dict()


def test_a_large_part_is_split_into_messages_that_join_up_again(
    batches: list[list[bytes]],
) -> None:
    engine = open_engine(settings())
    detections, _, _ = validate_lines(batches[0], "day.jsonl")
    prepared = engine.prepare(detections)
    messages = list(wire.messages(prepared, limit=4096))
    assert len(messages) > 5 and all(len(m) <= 4096 + 64 * 100 for m in messages)
    same(Located.concat([wire.decode(m) for m in messages]), prepared)
    odd = prepared.take(np.arange(1, len(prepared), 2))  # as a region's rows are taken
    assert odd.signals == {r // 2: s for r, s in prepared.signals.items() if r % 2}
    assert np.array_equal(odd.cols.t, prepared.cols.t[1::2])


def test_a_message_it_cannot_read_says_why(batches: list[list[bytes]]) -> None:
    engine = open_engine(settings())
    detections, _, _ = validate_lines(batches[0], "day.jsonl")
    message = wire.encode(engine.prepare(detections))
    assert wire.is_columns(message) and not wire.is_columns(b'{"source": "camera"}')
    for broken, why in [
        (message[:-3], "not readable"),
        (message + b"xx", "2 bytes left over"),
        (b"\x04" + message[1:], "format 4, this worker reads 1, 2, 3"),
        (message[:20], "cut short"),
    ]:
        with pytest.raises(wire.WireError, match=why):
            wire.decode(broken)


def version_1(batch: Located) -> bytes:
    """`batch` as a worker before sights wrote it (format 1: no sight after a signal's flame)."""
    grid = batch.grid.encode()
    parts = [wire._HEAD.pack(1, len(batch), len(batch.signals)), wire._LEN.pack(len(grid)), grid]
    cols = {"t": batch.cols.t, "lat": batch.cols.lat, "lon": batch.cols.lon}
    cols |= {"source": batch.cols.source, "cell": batch.cell, "strength": batch.strength}
    cols["static"] = batch.static
    parts += [np.ascontiguousarray(cols[name], dtype).tobytes() for name, dtype in wire._COLUMNS]
    for row, sig in sorted(batch.signals.items()):
        parts.append(wire._SIGNAL.pack(row, sig.frp, sig.pixel_km, sig.flame))
        for text in (sig.id, sig.device):
            parts += [wire._LEN.pack(len(text.encode())), text.encode()]
    return b"".join(parts)


def test_a_message_of_format_1_is_still_read(batches: list[list[bytes]]) -> None:
    engine = open_engine(settings())
    detections, _, _ = validate_lines(batches[0], "day.jsonl")
    prepared = engine.prepare(detections)
    assert any(sig.sight is not None for sig in prepared.signals.values())
    without = {row: dataclasses.replace(sig, sight=None) for row, sig in prepared.signals.items()}
    old = dataclasses.replace(prepared, signals=without)
    decoded = wire.decode(version_1(old))
    assert set(decoded.device.tolist()) == {""}  # no device ids before format 3
    same(decoded, dataclasses.replace(old, device=decoded.device, stations={}))


def test_a_message_of_format_2_is_read_and_its_rows_are_of_no_known_device(
    batches: list[list[bytes]],
) -> None:
    """A worker before device health wrote no device ids: its rows still make incidents, and
    device health leaves them alone (it cannot tell whose they are)."""
    engine = open_engine(settings())
    detections, _, _ = validate_lines(batches[0], "day.jsonl")
    prepared = engine.prepare(detections)
    message = wire.encode(prepared)
    ids = np.unique(prepared.device.astype(str))
    section = 4 + sum(2 + len(i.encode()) for i in ids.tolist()) + 4 * len(prepared)
    section += 4 + 20 * len(prepared.stations)
    old = b"\x02" + message[1 : len(message) - section]
    decoded = wire.decode(old)
    assert set(decoded.device.tolist()) == {""} and decoded.stations == {}
    same(decoded, dataclasses.replace(prepared, device=decoded.device, stations={}))
    fresh = open_engine(settings())
    events = fresh.process_located(decoded) + fresh.flush()
    assert events and not any(isinstance(e, DeviceEvent) for e in events)
