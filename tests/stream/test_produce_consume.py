"""`firewatch produce` and `firewatch consume-incidents` against the real broker."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict, deque
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from firewatch.cli import main
from firewatch.model import DETECTIONS
from firewatch.simulate import write_stream
from firewatch.stream.produce import FENCE, Fence, parse_rate
from firewatch.stream.topics import KafkaError, Topics

from ..kafka_fixtures import KafkaTestClient

ROOT = Path(__file__).resolve().parents[2]
FIRMS = ROOT / "data/firms/modis_c6_usa_24h_2020-10-01.csv"
QUJIANG = ROOT / "data/grids/qujiang.geojson"


def test_produce_sends_every_line_packed_for_its_devices_partition(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    at = "2026-04-04T10:00:00+08:00"
    good = [
        {"id": f"m{i}", "source": "camera", "device_id": f"cam-{i % 3}", "observed_at": at,
         "lat": 28.9, "lon": 118.9, "confidence": 0.9, "label": "smoke"}
        for i in range(9)
    ]  # fmt: skip
    lines = [orjson.dumps(r) for r in good] + [b"{not json", b'{"source": "drone"}']
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n\n")
    assert main(["produce", str(stream), str(FIRMS)]) == 0
    with FIRMS.open() as f:
        rows = list(csv.DictReader(f))
    assert f"sent {len(lines) + len(rows):,} records" in capsys.readouterr().out
    messages = kafka.read_all(topics.detections)  # partition by partition, in offset order
    assert len(messages) < len(lines) + len(rows)  # packed: several lines a message
    # the raw values cut at each newline (not pack.split, which skips blank lines)
    got = [(m.partition, line) for m in messages for line in m.value.split(b"\n")]
    assert len(got) == len(lines) + len(rows)
    values = Counter(line for _, line in got)
    assert all(values[line] == 1 for line in lines)  # JSONL lines go as they are, bad ones too
    kafka_partition, every = DefaultPartitioner(), list(range(topics.partitions))
    devices = {}
    for partition, line in got:
        device = _json(line).get("device_id")
        if isinstance(device, str):  # its device's partition, as Kafka would key it
            assert partition == kafka_partition(device.encode(), every, every)
            devices[device] = partition
    assert {"cam-0", "cam-1", "cam-2", "Terra-MODIS", "Aqua-MODIS"} <= set(devices)
    firms = [line for _, line in got if _json(line).get("source") == "satellite"]
    assert len(firms) == len(rows)
    assert len(DETECTIONS.validate_json(b"[" + b",".join(firms) + b"]")) == len(rows)
    cams = [line for _, line in got if line in lines[:9]]
    assert cams == sorted(lines[:9], key=lambda x: devices[_json(x)["device_id"]])  # in order


def test_produce_lands_no_record_later_than_the_file_has_it(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient
) -> None:
    """Four hours of a simulated district (its sensors' minutes interleave) sent as fast as the
    broker takes them, with one record from 2099 a third of the way: by the broker's own append
    times, no record lands after a record of a later minute of event time than the latest minute
    the file had reached before it (the workers' progress claims rely on it), 2099 aside, after
    it as before; and the lines go packed, many to a message, not one fence at a time."""
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=2, hours=4)
    lines = [line for line in stream.read_bytes().splitlines() if line.strip()]
    ahead = {**_json(lines[0]), "id": "clock-2099", "observed_at": "2099-01-01T00:00:00+00:00"}
    lines.insert(len(lines) // 3, orjson.dumps(ahead))
    stream.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["produce", str(stream)]) == 0
    appended: dict[bytes, deque[int]] = defaultdict(deque)  # a line sent twice: in order
    messages = kafka.read_all(topics.detections)  # partition by partition, in offset order
    for m in messages:
        for line in m.value.split(b"\n"):  # a packed message's lines: its append time
            appended[line].append(m.timestamp)
    assert sum(map(len, appended.values())) == len(lines)
    # about one message per partition a minute of event time (a fence each), not one per return
    # of the interleaved minutes (1,176 fences in this file when each return was one)
    assert len(messages) <= topics.partitions * (4 * 60 + 10)
    # 2099 aside, the worker rejects it (future_timestamp): no record is late for it
    minutes = [_minute(_json(line).get("observed_at")) for line in lines]
    minutes[len(lines) // 3] = -1
    landed = [appended[line].popleft() for line in lines]
    # the latest minute the file had reached before each record, and before each append time
    in_file = np.maximum.accumulate([-1.0, *minutes[:-1]])
    by_time = np.argsort(landed, kind="stable")
    stamps = np.array(landed)[by_time]
    newest = np.maximum.accumulate(np.array(minutes)[by_time])
    later = 0
    for i, (minute, ts) in enumerate(zip(minutes, landed, strict=True)):
        before = np.searchsorted(stamps, ts, side="left")  # appended strictly before it
        seen = newest[before - 1] if before else -1.0
        assert seen <= max(minute, in_file[i]), f"{lines[i][:80]!r} landed later than in the file"
        later += seen > minute  # it did land after a later minute: as late as in the file
    assert later  # the file's interleaved minutes did show (the check could have failed)


def _json(line: bytes) -> dict[str, object]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}  # the simulator's malformed lines
    return record if isinstance(record, dict) else {}


def _minute(at: object) -> float:
    """The record's minute of event time; -1 for a time that is not RFC 3339 with an offset."""
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        return -1
    return -1 if when is None or when.tzinfo is None else when.timestamp() // FENCE


def test_consume_incidents_writes_each_event_once(
    tmp_path: Path, topics: Topics, kafka: KafkaTestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [
        {"event": "opened", "event_id": f"inc-{n}/0", "incident_id": f"inc-{n}"} for n in range(5)
    ]
    sent = [orjson.dumps(e) for e in events]
    kafka.create_topic(topics.incidents, 3)
    kafka.produce(topics.incidents, [(None, v) for v in sent + sent[:3] + [b"garbage"]])
    out = tmp_path / "incidents.jsonl"
    args = ["consume-incidents", "--out", str(out), "--idle-timeout", "2"]
    assert main(args) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(e["event_id"] for e in written) == sorted(e["event_id"] for e in events)
    assert "3 duplicates dropped, 1 not incident events" in capsys.readouterr().err


def test_bad_rates_and_an_unreachable_broker_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_rate("5000/s") == 5000.0 and parse_rate(None) is None
    with pytest.raises(KafkaError, match="records per second"):
        parse_rate("fast")
    stream = tmp_path / "s.jsonl"
    stream.write_text("{}\n")
    monkeypatch.setenv("FIREWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert main(["produce", str(stream)]) == 2
    assert "cannot reach the Kafka broker at 127.0.0.1:1" in capsys.readouterr().err


def _crossings(minutes: list[float]) -> list[float]:
    fence = Fence()
    return [m for m in minutes if fence.crosses(m * FENCE + 7)]


def test_a_fence_for_each_later_minute_not_for_each_return_to_one() -> None:
    # interleaved neighbouring minutes: one fence a minute
    assert _crossings([5, 4, 5, 4, 5, 6, 5, 6, 7]) == [5, 6, 7]
    # a record half an hour late (within REANCHOR): as late as it is, no fence on the way back
    assert _crossings([40, 41, 10, 41, 42]) == [40, 41, 42]
    # a clock far ahead: its record is a fence, and the file's own minutes fence again after it
    later = 60 * 24 * 365 * 73
    assert _crossings([10, 11, later, 11, 11, 12, 13]) == [10, 11, later, 12, 13]
    # a second file an hour and more before the first: fenced again from its own minutes
    assert _crossings([500, 501, 400, 401, 401, 402]) == [500, 501, 401, 402]
