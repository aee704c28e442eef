"""`firewatch worker` on the real broker: the same incidents as `firewatch replay`."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from firewatch.cli import main
from firewatch.replay import replay
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.simulate import write_stream
from firewatch.stream.consume import consume_main
from firewatch.stream.topics import Topics, ensure_topics

from ..kafka_fixtures import KafkaTestClient

ROOT = Path(__file__).resolve().parents[2]
QUJIANG = ROOT / "data/grids/qujiang.geojson"
FIRMS = ROOT / "data/firms/modis_c6_usa_24h_2020-10-01.csv"
CALIFORNIA = ROOT / "data/polygons/usfs_ranger_districts_california.geojson"
CALIFORNIA_SCHEMA = ROOT / "data/grids/california.yaml"


def _replayed(tmp_path: Path, inputs: list[Path]) -> set[bytes]:
    engine = open_engine(Settings.from_env(os.environ))
    out = tmp_path / "replayed.jsonl"
    replay(engine, inputs, out)
    return set(out.read_bytes().splitlines())


def _consumed(topics: Topics) -> set[bytes]:
    out = io.BytesIO()
    consume_main(os.environ["FIREWATCH_KAFKA_BOOTSTRAP"], topics.incidents, out, 1.0, None)
    return set(out.getvalue().splitlines())


class Workers:
    """`firewatch worker` processes, with their logs; all stopped at teardown."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *options: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker{len(self.processes)}.log"
        with log.open("wb") as f:
            process = subprocess.Popen(
                [sys.executable, "-m", "firewatch", "worker", "--idle-release", "2", *options],
                cwd=ROOT,
                env=dict(os.environ),
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def log_tail(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.logs.glob("worker*.log")))

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(topics: Topics, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def _wait_for(topics: Topics, expected: set[bytes], timeout: float = 120) -> set[bytes]:
    deadline = time.monotonic() + timeout
    got: set[bytes] = set()
    while time.monotonic() < deadline:
        got = _consumed(topics)
        if got == expected:
            return got
        time.sleep(2)
    return got


def test_simulated_qujiang_stream_gives_the_replay_incidents(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, workers: Workers
) -> None:
    stream = tmp_path / "stream.jsonl"
    sim = write_stream(stream, QUJIANG, seed=2, hours=4)
    expected = _replayed(tmp_path, [stream])
    workers.start()
    assert main(["produce", str(stream)]) == 0
    got = _wait_for(topics, expected)
    assert got == expected, workers.log_tail()
    assert len(expected) >= 5
    dead = kafka.consume(topics.rejects, len(sim.malformed))
    letters = [orjson.loads(m.value) for m in dead]
    assert len(letters) == len(sim.malformed)
    assert all(d["topic"] == topics.detections and d["reason"] for d in letters)
    raws = {d["raw"] for d in letters}
    lines = stream.read_bytes().splitlines()
    assert raws <= {line.decode("utf-8", errors="replace") for line in lines}


def test_california_firms_gives_the_replay_incidents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, topics: Topics, workers: Workers
) -> None:
    monkeypatch.setenv("FIREWATCH_GRID", str(CALIFORNIA))
    monkeypatch.setenv("FIREWATCH_GRID_SCHEMA", str(CALIFORNIA_SCHEMA))
    expected = _replayed(tmp_path, [FIRMS])
    workers.start()
    assert main(["produce", str(FIRMS)]) == 0
    got = _wait_for(topics, expected)
    assert got == expected, workers.log_tail()
    assert len(expected) > 50


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


def _opened_once(events: set[bytes]) -> bool:
    opened = [orjson.loads(e)["incident_id"] for e in events if b'"event":"opened"' in e]
    return len(opened) == len(set(opened))


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_worker_killed_mid_stream_is_replaced_without_loss_or_double(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, topics: Topics, workers: Workers, store: str
) -> None:
    """memory:// restores the table from its changelog; rocksdb:// (the `rocksdb` extra, for
    production) from the files the killed worker left in its state directory, then the changelog."""
    monkeypatch.setenv("FIREWATCH_STATE_STORE", store)
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=4, hours=24)
    expected = _replayed(tmp_path, [stream])
    first = workers.start()
    producer = _offer_until_events(topics, stream, rate=4000)  # ~15 s of input
    first.kill()  # SIGKILL: no shutdown, no final commit or flush
    first.wait()
    partial = _consumed(topics)
    assert partial, workers.log_tail()
    assert len(partial) < len(expected)  # killed in the middle, not after the end
    assert producer.poll() is None  # and input still arriving
    workers.start()
    assert producer.wait(timeout=120) == 0
    got = _wait_for(topics, expected)
    assert got == expected, workers.log_tail()
    assert _opened_once(got)


def test_two_workers_split_the_partitions_and_agree_with_one(
    tmp_path: Path, topics: Topics, workers: Workers
) -> None:
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=5, hours=8)
    expected = _replayed(tmp_path, [stream])
    workers.start()
    workers.start()
    time.sleep(5)  # let the group settle on two members before the data arrives
    assert main(["produce", str(stream)]) == 0
    got = _wait_for(topics, expected)
    assert got == expected, workers.log_tail()
    assert _opened_once(got)


def test_a_worker_joining_and_one_leaving_mid_stream_lose_nothing(
    tmp_path: Path, topics: Topics, workers: Workers
) -> None:
    """Both rebalances while input flows: state saved at most every second and offsets acked only
    after the snapshot that covers them, so the new owner resumes without a gap."""
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=6, hours=24)
    expected = _replayed(tmp_path, [stream])
    first = workers.start()
    producer = _offer_until_events(topics, stream, rate=2500)  # ~23 s of input
    workers.start()  # a second worker joins: both consumer groups rebalance
    time.sleep(6)
    first.terminate()  # the first leaves: its partitions move to the second
    assert first.wait(timeout=60) == 0, workers.log_tail()
    assert producer.poll() is None  # all of it while input still arrives
    assert producer.wait(timeout=120) == 0
    got = _wait_for(topics, expected)
    assert got == expected, workers.log_tail()
    assert _opened_once(got)


def test_partitions_without_records_do_not_hold_back_incidents(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    topics: Topics,
    kafka: KafkaTestClient,
    workers: Workers,
) -> None:
    """All records on one detection partition (one key), the others silent, and no idle release
    within the test: nothing comes out until the silent partitions count as quiet."""
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=2, hours=4)
    expected = _replayed(tmp_path, [stream])
    lines = [line for line in stream.read_bytes().splitlines() if line.strip()]
    asyncio.run(ensure_topics(kafka.bootstrap, topics))  # 3 partitions: 2 of them get nothing
    kafka.produce(topics.detections, ((b"one", line) for line in lines))
    never = ("--idle-release", "600")
    first = workers.start(*never, "--quiet-after", "600")
    time.sleep(15)  # joined, and the whole input read
    assert _consumed(topics) == set(), workers.log_tail()  # held: two partitions never report
    first.terminate()
    assert first.wait(timeout=60) == 0
    group = os.environ["FIREWATCH_KAFKA_GROUP"]
    monkeypatch.setenv("FIREWATCH_KAFKA_GROUP", f"{group}-quiet")  # reads it all again
    workers.start(*never, "--quiet-after", "2")
    # all of it long before the idle release (600 s): this stream's last 10 min (the grace
    # period the watermark still holds back) has no fire signal
    got = _wait_for(topics, expected, timeout=60)
    assert got == expected, workers.log_tail()
