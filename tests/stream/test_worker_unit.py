"""The worker's batch logic without a broker: dead letters, routing, progress, held release."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from firewatch.engine.core import Engine
from firewatch.model import EventKind
from firewatch.settings import Settings
from firewatch.stream.worker import MARKER, Worker, pack_state, unpack_state

from ..engine.conftest import camera, sensor

BAD = [
    (b"\xff\xfe garbage", "malformed_json"),
    (b'{"source": "camera", "device_id": "c"', "malformed_json"),
    (orjson.dumps({**camera("c", 0, 0.9), "lat": 123.0}), "bad_coordinate"),
    (orjson.dumps({k: v for k, v in camera("c", 0, 0.9).items() if k != "label"}), "missing_field"),
]


@pytest.fixture
def worker(make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> Worker:
    monkeypatch.setenv("FIREWATCH_KAFKA_PARTITIONS", "2")
    return Worker(Settings.from_env(os.environ), make_engine)


def test_bad_records_become_dead_letters_and_the_rest_is_routed(worker: Worker) -> None:
    good = [orjson.dumps(camera("c", 0, 0.9)), orjson.dumps(sensor("s", 1, temp=20))]
    outside = orjson.dumps({**camera("far", 2, 0.9), "lat": 10.0})
    values = [*(v for v, _ in BAD), good[0], good[1], outside]
    offsets = list(range(len(values)))  # the first bad record sits at offset 0
    out, dead = worker.locate(3, values, offsets)
    letters = [orjson.loads(d) for d in dead]
    assert [d["reason"] for d in letters] == [reason for _, reason in BAD]
    assert [d["offset"] for d in letters] == [0, 1, 2, 3]
    assert all(d["partition"] == 3 and d["topic"] == worker.topics.detections for d in letters)
    assert [d["raw"] for d in letters] == [v.decode(errors="replace") for v, _ in BAD]
    assert [k for k, _ in out] == [b"test"]  # the grid's one district: one message
    assert [d.encode() for _, v in out for d in orjson.loads(v)["d"]] == good
    assert worker.counts == {"rejected": 4, "outside": 1, "located": 2}
    assert orjson.loads(worker.markers()[0])["p"] == 3


def test_nothing_is_released_until_every_source_partition_has_reported(worker: Worker) -> None:
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    events, states = worker.incidents(0, out, lambda region: None)
    assert events == [] and set(states) == {b"test"}  # held: partition 1 has not reported
    marker = [(MARKER, orjson.dumps({"p": 1, "t": 10**10}))]
    worker.locate(0, [orjson.dumps(sensor("s", 30, temp=20))], [1])  # source 0 moves on
    events, _ = worker.incidents(0, [*marker, (MARKER, worker.markers()[0])], lambda r: None)
    assert [e.event for e in events] == [EventKind.OPENED]


def test_state_round_trips_through_the_table_value(worker: Worker, tmp_path: Path) -> None:
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    _, states = worker.incidents(1, out, lambda region: None)
    partition, snapshot = unpack_state(states[b"test"])
    assert partition == 1
    engine = worker.make_engine()
    engine.restore(snapshot)
    assert pack_state(1, engine) == states[b"test"]
    worker.forget({1})
    assert worker.engines == {}


def test_a_batch_of_only_bad_records_reports_no_progress(worker: Worker) -> None:
    out, dead = worker.locate(1, [v for v, _ in BAD], [0, 1, 2, 3])
    assert out == [] and len(dead) == len(BAD)
    assert worker.markers() == []  # no event time seen on partition 1: nothing to claim
    worker.locate(1, [orjson.dumps(camera("c", 5, 0.9))], [4])
    (marker,) = worker.markers()
    assert orjson.loads(marker)["p"] == 1 and orjson.loads(marker)["t"] > 0
