"""`firewatch worker` on the real broker: the same incidents as `firewatch replay`."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import shapely

from firewatch.cli import main
from firewatch.geo.grid import load_grid
from firewatch.replay import replay
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.simulate import write_stream
from firewatch.stream.consume import consume_main
from firewatch.stream.stages import MARKER
from firewatch.stream.topics import Topics, ensure_topics
from firewatch.stream.watchdog import EXIT_STALLED

from ..engine.conftest import sensor
from ..kafka_fixtures import KafkaTestClient
from .conftest import ROOT, Processes, saved_states

QUJIANG = ROOT / "data/grids/qujiang.geojson"
FIRMS = ROOT / "data/firms/modis_c6_usa_24h_2020-10-01.csv"
CALIFORNIA = ROOT / "data/polygons/usfs_ranger_districts_california.geojson"
CALIFORNIA_SCHEMA = ROOT / "data/grids/california.yaml"


def _replayed(tmp_path: Path, inputs: list[Path]) -> set[bytes]:
    """`firewatch replay`'s events, with the clock's time as `--now` (as the worker has)."""
    engine = open_engine(Settings.from_env(os.environ))
    out = tmp_path / "replayed.jsonl"
    replay(engine, inputs, out, now=datetime.now(UTC))
    return set(out.read_bytes().splitlines())


def _consumed(topics: Topics) -> set[bytes]:
    """What `consume-incidents` gives (each event id once): for waiting, never for verdicts."""
    out = io.BytesIO()
    consume_main(os.environ["FIREWATCH_KAFKA_BOOTSTRAP"], topics.incidents, out, 1.0, None)
    return set(out.getvalue().splitlines())


def _raw(kafka: KafkaTestClient, topics: Topics) -> list[bytes]:
    """Every message on the incidents topic, duplicates and all."""
    return [m.value for m in kafka.read_all(topics.incidents)]


def _wait_for(
    kafka: KafkaTestClient,
    topics: Topics,
    expected: set[bytes],
    timeout: float = 120,
    supervise: tuple[Processes, list[subprocess.Popen[bytes]]] | None = None,
) -> list[bytes]:
    """The raw incidents topic once it holds every expected event (or at the timeout). With
    `supervise`, a worker that exits EXIT_STALLED (its state-table recovery made no progress: it
    asks to be started again) is started again, as compose's `restart:` does (README, Faults)."""
    deadline = time.monotonic() + timeout
    got: list[bytes] = []
    while time.monotonic() < deadline:
        if supervise is not None:
            procs, workers = supervise
            for i, worker in enumerate(workers):
                if worker.poll() == EXIT_STALLED:
                    workers[i] = procs.worker()
        got = _raw(kafka, topics)
        if set(got) >= expected:
            time.sleep(1)  # anything wrong still on its way shows up too
            return _raw(kafka, topics)
        time.sleep(2)
    return got


def _same_events(
    raw: list[bytes], expected: set[bytes], *, copies: bool = False, moved: bool = False
) -> str | None:
    """Why the raw topic is not the replay's events, incident and device events alike (None: it
    is). Without faults each event is there once; with `copies` (a worker killed or moved), an
    event may come again, but only as the very same bytes: never a second, different `opened`
    (or any event) under one id. With `moved` (partitions that change hands mid-stream), device
    events are compared by what happened where and when (id, kind, device or cell, time), not by
    the interval a device's reports were learned at: a record later than the grace period
    (README, Faults) counts into it or not by how far the stream's watermark had come."""
    if moved:
        raw = [_what_happened(e) for e in raw]
        expected = {_what_happened(e) for e in expected}
    extra, missing = set(raw) - expected, expected - set(raw)
    if extra or missing:
        lines = [f"{len(extra)} events not in the replay, {len(missing)} of the replay missing:"]
        lines += [f"+ {e.decode(errors='replace')}" for e in sorted(extra)[:6]]
        lines += [f"- {e.decode(errors='replace')}" for e in sorted(missing)[:6]]
        return "\n".join(lines)
    if not copies and len(raw) != len(set(raw)):
        return f"{len(raw) - len(set(raw))} events sent twice without any fault"
    return None


def _what_happened(event: bytes) -> bytes:
    """An incident event as it is; a device event as its id, kind, device, cell and time."""
    if b'"incident_id"' in event:
        return event
    e = orjson.loads(event)
    return orjson.dumps(
        {k: e[k] for k in ("event_id", "event", "device_id", "grid_id", "observed_at")}
    )


YEAR_2099 = "2099-01-01T00:00:00+00:00"


def _json(line: bytes) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # the simulator's malformed lines


def _with_broken_clocks(stream: Path, out: Path) -> tuple[bytes, str]:
    """The stream with one sensor reading from 2099 inserted a third of the way through, and the
    readings of one sensor that reports fire signals shifted a week back: (the 2099 line, that
    sensor's id)."""
    lines = stream.read_bytes().splitlines()
    records = [(i, r) for i, line in enumerate(lines) if isinstance(r := _json(line), dict)]
    hot = next(
        r["device_id"]
        for _, r in records
        if r.get("source") == "sensor" and r.get("readings", {}).get("temperature_c", 0) >= 60
    )
    for i, r in records:
        if r.get("device_id") == hot:
            when = datetime.fromisoformat(r["observed_at"]) - timedelta(days=7)
            lines[i] = orjson.dumps({**r, "observed_at": when.isoformat()})
    steady = next(r for _, r in records if r.get("source") == "sensor" and r["device_id"] != hot)
    future = orjson.dumps(
        {**steady, "id": "clock-2099", "observed_at": "2099-01-01T00:00:00+00:00"}
    )
    lines.insert(len(lines) // 3, future)
    out.write_bytes(b"\n".join(lines) + b"\n")
    return future, hot


def test_a_worker_idle_before_input_gives_the_replay_events(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, procs: Processes
) -> None:
    """The worker waits on empty topics long enough for every partition to be read out and
    'quiet', then the whole stream arrives at full speed: partitions whose records are on the
    broker but not fetched yet claim nothing, so every event equals the replay's. In the stream,
    a sensor whose clock says 2099 (rejected `future_timestamp`, silencing nothing) and one whose
    clock is a week behind (its fire signals counted stale)."""
    clean = tmp_path / "clean.jsonl"
    sim = write_stream(clean, QUJIANG, seed=2, hours=4)
    stream = tmp_path / "stream.jsonl"
    future, behind = _with_broken_clocks(clean, stream)
    expected = _replayed(tmp_path, [stream])
    asyncio.run(ensure_topics(kafka.bootstrap, topics))
    procs.worker("--quiet-after", "1")
    time.sleep(8)  # joined, every partition read to its (empty) end many times over
    assert main(["produce", str(stream)]) == 0
    raw = _wait_for(kafka, topics, expected)
    why = _same_events(raw, expected)
    assert why is None, f"{why}\n{procs.log_tail()}"
    assert len(expected) >= 5
    dead = kafka.consume(topics.rejects, len(sim.malformed) + 1)
    letters = [orjson.loads(m.value) for m in dead]
    assert len(letters) == len(sim.malformed) + 1
    assert all(d["topic"] == topics.detections and d["reason"] for d in letters)
    assert [d["raw"].encode() for d in letters if d["reason"] == "future_timestamp"] == [future]
    raws = {d["raw"] for d in letters}
    lines = stream.read_bytes().splitlines()
    assert raws <= {line.decode("utf-8", errors="replace") for line in lines}
    stale = sum(state["stats"]["outcomes"].get("stale", 0) for state in saved_states(kafka))
    assert stale > 0, f"{behind}: none of its week-old fire signals counted stale"


def test_california_firms_produced_slowly_onto_some_partitions_gives_the_replay_events(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    topics: Topics,
    kafka: KafkaTestClient,
    procs: Processes,
) -> None:
    """The FIRMS file has two device keys, so at least one of the 3 detection partitions gets
    nothing; at 250 records/s its claims follow the input, progress markers keep coming for the
    silent partitions after the input ends, and the idle release still ends the stream (markers
    are not input): all events, not only `opened`, equal the replay's."""
    monkeypatch.setenv("FIREWATCH_GRID", str(CALIFORNIA))
    monkeypatch.setenv("FIREWATCH_GRID_SCHEMA", str(CALIFORNIA_SCHEMA))
    expected = _replayed(tmp_path, [FIRMS])
    procs.worker("--quiet-after", "3")
    assert main(["produce", "--rate", "250/s", str(FIRMS)]) == 0
    raw = _wait_for(kafka, topics, expected, timeout=60)
    why = _same_events(raw, expected)
    assert why is None, f"{why}\n{procs.log_tail()}"
    assert len(expected) > 100
    silent = [p for p, end in kafka.end_offsets(topics.detections).items() if end == 0]
    assert silent  # the case under test: partitions without records


def _offer_until_events(topics: Topics, stream: Path, rate: int) -> subprocess.Popen[bytes]:
    """`firewatch produce --rate` in the background, returned once incident events come out, so
    that what the test does next happens while records are still arriving."""
    producer = subprocess.Popen(
        [sys.executable, "-m", "firewatch", "produce", "--rate", str(rate), str(stream)], cwd=ROOT
    )
    deadline = time.monotonic() + 60
    while not _consumed(topics) and time.monotonic() < deadline:
        time.sleep(0.5)
    return producer


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_worker_killed_mid_stream_is_replaced_without_loss_or_double(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    topics: Topics,
    kafka: KafkaTestClient,
    procs: Processes,
    store: str,
) -> None:
    """memory:// restores the table from its changelog; rocksdb:// (the `rocksdb` extra, for
    production) from the files the killed worker left in its state directory, then the changelog."""
    monkeypatch.setenv("FIREWATCH_STATE_STORE", store)
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=4, hours=24)
    expected = _replayed(tmp_path, [stream])
    first = procs.worker()
    producer = _offer_until_events(topics, stream, rate=4000)  # ~15 s of input
    first.kill()  # SIGKILL: no shutdown, no final commit or flush
    first.wait()
    partial = _consumed(topics)
    assert partial, procs.log_tail()
    assert len(partial) < len(expected)  # killed in the middle, not after the end
    assert producer.poll() is None  # and input still arriving
    procs.worker()
    assert producer.wait(timeout=120) == 0
    raw = _wait_for(kafka, topics, expected)
    why = _same_events(raw, expected, copies=True, moved=True)
    assert why is None, f"{why}\n{procs.log_tail()}"


def test_two_workers_split_the_partitions_and_agree_with_one(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, procs: Processes
) -> None:
    stream = tmp_path / "stream.jsonl"
    # seed 5: the day that diverged now and then in clean-clone CI runs (197 device_down events
    # at other times, 2026-12-04): a consumer that skipped located messages after a rebalance.
    # With stream/continuity.py 8 of 8 runs beside CPU burners passed, 3 of them healing such a
    # gap (README Faults)
    write_stream(stream, QUJIANG, seed=5, hours=8)
    expected = _replayed(tmp_path, [stream])
    procs.worker()
    procs.worker()
    time.sleep(5)  # let the group settle on two members before the data arrives
    assert main(["produce", str(stream)]) == 0
    raw = _wait_for(kafka, topics, expected)
    why = _same_events(raw, expected)
    assert why is None, f"{why}\n{procs.log_tail()}"


def test_a_worker_joining_and_one_leaving_mid_stream_lose_nothing(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, procs: Processes
) -> None:
    """Both rebalances while input flows: state saved at most every second and offsets acked only
    after the snapshot that covers them, so the new owner resumes without a gap."""
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=6, hours=24)
    expected = _replayed(tmp_path, [stream])
    first = procs.worker()
    producer = _offer_until_events(topics, stream, rate=2500)  # ~23 s of input
    second = procs.worker()  # a second worker joins: both consumer groups rebalance
    time.sleep(6)
    first.terminate()  # the first leaves: its partitions move to the second
    assert first.wait(timeout=60) == 0, procs.log_tail()
    assert producer.poll() is None  # all of it while input still arrives
    assert producer.wait(timeout=120) == 0
    raw = _wait_for(kafka, topics, expected, timeout=180, supervise=(procs, [second]))
    why = _same_events(raw, expected, copies=True, moved=True)
    assert why is None, f"{why}\n{procs.log_tail()}"


def test_partitions_without_records_do_not_hold_back_incidents(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, procs: Processes
) -> None:
    """All records on one detection partition (one key), the others silent, and no idle release
    within the test: incidents come out while the input flows, because the silent partitions
    claim what was appended `--quiet-after` seconds earlier. A successor with an idle release
    then ends the stream: everything equals the replay."""
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=2, hours=4)
    expected = _replayed(tmp_path, [stream])
    lines = [line for line in stream.read_bytes().splitlines() if line.strip()]
    asyncio.run(ensure_topics(kafka.bootstrap, topics))  # 3 partitions: 2 of them get nothing
    first = procs.start("worker", "--idle-release", "600", "--quiet-after", "2")
    time.sleep(3)
    rate = max(200, len(lines) // 15)  # about 15 s of input
    batches = [lines[i : i + rate // 5] for i in range(0, len(lines), rate // 5)]
    for batch in batches:  # one key, so one partition; 5 batches a second
        kafka.produce(topics.detections, ((b"one", line) for line in batch))
        time.sleep(0.2)
    during = set(_raw(kafka, topics))
    assert during, procs.log_tail()  # incidents while the input flowed, no idle release
    assert during <= expected  # and each of them one of the replay's
    first.terminate()
    assert first.wait(timeout=60) == 0, procs.log_tail()
    procs.worker()  # resumes from the saved state; its idle release ends the stream
    raw = _wait_for(kafka, topics, expected, timeout=60)
    why = _same_events(raw, expected, copies=True, moved=True)
    assert why is None, f"{why}\n{procs.log_tail()}"


def test_a_consumer_that_skips_located_messages_is_sought_back(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    topics: Topics,
    kafka: KafkaTestClient,
    procs: Processes,
) -> None:
    """The incidents stage takes each located partition's messages in offset order from the
    committed one (stream/continuity.py): a worker whose Faust consumer drops the first 40
    messages of located partition 1 (a fault injected below Faust, tests/stream/skipping_worker.py;
    a successor did that in a CI run, README Faults) seeks back and gives the replay's events.
    Without the check it lost those records: devices called down that never were, incidents
    missing."""
    monkeypatch.setenv("FIREWATCH_TEST_SKIP", "40")
    monkeypatch.setenv("FIREWATCH_TEST_SKIP_PARTITION", "1")
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=3, hours=8)
    expected = _replayed(tmp_path, [stream])
    assert main(["produce", str(stream)]) == 0
    procs.start("worker", "--idle-release", "2", program=ROOT / "tests/stream/skipping_worker.py")
    raw = _wait_for(kafka, topics, expected)
    why = _same_events(raw, expected)
    assert why is None, f"{why}\n{procs.log_tail()}"
    log = procs.log_text("worker")
    assert "skipping_worker: dropped" in log  # the fault happened
    # ... to the region's records, not only to progress markers: partition 1 carries them
    dropped = [m for m in kafka.read_all(topics.located) if m.partition == 1 and m.offset < 40]
    assert any(m.key != MARKER for m in dropped), [m.key for m in dropped]
    assert f"{topics.located}[1]: given offset" in log and "seeking back to 0" in log, log[-3000:]


def _many_devices(path: Path, count: int, minutes: float, seed: int) -> None:
    """One reading from each of `count` sensors, each near a random cell's representative point
    (their coordinates differ, so the region's state does not compress to nothing)."""
    rng = random.Random(seed)
    grid = load_grid(QUJIANG)
    points = shapely.get_coordinates(shapely.point_on_surface(grid.geoms)).tolist()
    lines = []
    for i in range(count):
        lon, lat = points[rng.randrange(len(points))]
        reading = sensor(f"many-{seed}-{i:06d}", minutes, temp=20.0)
        reading["lat"] = round(lat + rng.uniform(-1e-4, 1e-4), 6)
        reading["lon"] = round(lon + rng.uniform(-1e-4, 1e-4), 6)
        lines.append(orjson.dumps(reading))
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_a_region_state_larger_than_kafkas_default_limit_is_saved_and_restored(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, procs: Processes
) -> None:
    """A busy region's state passes Kafka's default 1 MB message limit (2.4 MB compressed at
    province scale): the changelog takes it (worker.STATE_MAX_BYTES), and a successor of a killed
    worker resumes from it: its own next save still knows every device."""
    first_batch, devices = tmp_path / "many.jsonl", 70_000
    _many_devices(first_batch, devices, minutes=0, seed=1)
    first = procs.worker()
    assert main(["produce", str(first_batch)]) == 0
    topic = os.environ["FIREWATCH_KAFKA_GROUP"] + "-engine-state-changelog"
    deadline, largest = time.monotonic() + 90, 0
    while largest <= 1_048_576 and time.monotonic() < deadline:
        time.sleep(2)
        with contextlib.suppress(Exception):  # the changelog topic may not be there yet
            largest = max((len(m.value) for m in kafka.read_all(topic)), default=0)
    assert largest > 1_048_576, f"no saved state over 1 MiB ({largest} bytes)\n{procs.log_tail()}"
    assert first.poll() is None, procs.log_tail()  # the checkpoint went through
    assert "checkpoint failed" not in procs.log_text("worker")
    first.kill()
    first.wait()
    procs.worker()
    later = tmp_path / "later.jsonl"
    _many_devices(later, 1, minutes=5, seed=2)
    assert main(["produce", str(later)]) == 0
    deadline, known = time.monotonic() + 120, 0
    while known < devices + 1 and time.monotonic() < deadline:
        time.sleep(2)
        with contextlib.suppress(Exception):
            known = max(len(s["devices"]["ids"]) for s in saved_states(kafka))
    assert known == devices + 1, f"the successor's state knows {known} devices\n{procs.log_tail()}"
