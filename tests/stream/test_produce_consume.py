"""`firewatch produce` and `firewatch consume-incidents` against the real broker."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

from firewatch.cli import main
from firewatch.model import DETECTIONS
from firewatch.stream.produce import parse_rate
from firewatch.stream.topics import KafkaError, Topics

from ..kafka_fixtures import KafkaTestClient

ROOT = Path(__file__).resolve().parents[2]
FIRMS = ROOT / "data/firms/modis_c6_usa_24h_2020-10-01.csv"


def test_produce_sends_every_line_keyed_by_device(
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
    got = kafka.consume(topics.detections, len(lines) + len(rows))
    values = Counter(m.value for m in got)
    assert all(values[line] == 1 for line in lines)  # JSONL lines go as they are, bad ones too
    by_key: dict[bytes | None, set[int]] = {}
    for m in got:
        by_key.setdefault(m.key, set()).add(m.partition)
    keyed = {k: parts for k, parts in by_key.items() if k is not None}  # bad lines have no key
    assert all(len(parts) == 1 for parts in keyed.values())  # one device, one partition
    assert {b"cam-0", b"cam-1", b"cam-2", b"Terra-MODIS", b"Aqua-MODIS"} <= set(by_key)
    firms = [m.value for m in got if m.key in (b"Terra-MODIS", b"Aqua-MODIS")]
    assert len(firms) == len(rows)
    assert len(DETECTIONS.validate_json(b"[" + b",".join(firms) + b"]")) == len(rows)


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
