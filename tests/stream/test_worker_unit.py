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
from firewatch.stream.worker import MARKER, Worker, envelopes, pack_state, unpack_state

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
    # None: a message without a value (a tombstone); b"  ": nothing but whitespace
    bad = [*BAD[:2], (None, "malformed_json"), (b"  ", "malformed_json"), *BAD[2:]]
    values = [*(v for v, _ in bad), good[0], good[1], outside]
    offsets = list(range(len(values)))  # the first bad record sits at offset 0
    out, dead = worker.locate(3, values, offsets)
    letters = [orjson.loads(d) for d in dead]
    assert [d["reason"] for d in letters] == [reason for _, reason in bad]
    assert [d["message"] for d in letters][2:4] == ["empty message value"] * 2
    assert [d["offset"] for d in letters] == offsets[: len(bad)]
    assert all(d["partition"] == 3 and d["topic"] == worker.topics.detections for d in letters)
    assert [d["raw"] for d in letters] == [(v or b"").decode(errors="replace") for v, _ in bad]
    assert [k for k, _ in out] == [b"test"]  # the grid's one district: one message
    assert out[0][1].split(b"\n") == good
    assert worker.counts == {"rejected": len(bad), "outside": 1, "located": 2}
    assert list(orjson.loads(worker.marker() or b"{}")) == ["3"]


def test_envelopes_keep_each_line_whole_and_stay_under_the_limit() -> None:
    lines = [b'{"a": %d}' % i for i in range(100)] + [b'{\n"multi": "line"\n}', b"x" * 300]
    messages = list(envelopes(lines, limit=200))
    assert all(len(m) <= 200 for m in messages[:-1]) and messages[-1] == b"x" * 300
    assert [orjson.loads(line) for m in messages[:-1] for line in m.split(b"\n")] == [
        orjson.loads(line) for line in lines[:-1]
    ]


def test_nothing_is_released_until_every_source_partition_has_reported(worker: Worker) -> None:
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    events, touched = worker.incidents(0, out, lambda region: None)
    assert events == [] and touched == {b"test"}  # held: partition 1 has not reported
    marker = [(MARKER, orjson.dumps({"1": 10**10}))]
    worker.locate(0, [orjson.dumps(sensor("s", 30, temp=20))], [1])  # source 0 moves on
    events, _ = worker.incidents(0, [*marker, (MARKER, worker.marker() or b"")], lambda r: None)
    assert [e.event for e in events] == [EventKind.OPENED]


def test_state_round_trips_through_the_table_value(worker: Worker, tmp_path: Path) -> None:
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    _, touched = worker.incidents(1, out, lambda region: None)
    states = worker.states(touched)
    assert states[b"test"][0] == 1
    partition, snapshot = unpack_state(states[b"test"][1])
    assert partition == 1
    engine = worker.make_engine()
    engine.restore(snapshot)
    assert pack_state(1, engine) == states[b"test"][1]
    worker.forget({1})
    assert worker.engines == {} and worker.states(touched) == {}  # revoked: nothing to save


def test_a_batch_of_only_bad_records_reports_no_progress(worker: Worker) -> None:
    out, dead = worker.locate(1, [v for v, _ in BAD], [0, 1, 2, 3])
    assert out == [] and len(dead) == len(BAD)
    assert worker.marker() is None  # no event time seen on partition 1: nothing to claim
    worker.locate(1, [orjson.dumps(camera("c", 5, 0.9))], [4])
    assert list(orjson.loads(worker.marker() or b"{}")) == ["1"]
    worker.forget_sources({1})  # partition 1 moved to another worker, which reports it now
    assert worker.marker() is None
