"""`firewatch dispatcher` on the real broker and a real redis-server: from the incidents topic to
the orders in Redis, through Redis outages, with two dispatchers, and the closed loop back to a
worker's engine. Verdicts read Redis's keys and the raw topics."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import yaml

from firewatch.cli import main
from firewatch.linkage import keys
from firewatch.linkage.server import RedisProcess
from firewatch.model import event_key, parse_event
from firewatch.replay import replay
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.simulate import write_stream
from firewatch.stream.topics import Topics, ensure_topics

from ..kafka_fixtures import KafkaTestClient
from .conftest import ROOT, Processes, saved_states

QUJIANG = ROOT / "data/grids/qujiang.geojson"


@pytest.fixture
def client(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    c = redis_server.client()
    try:
        yield c
    finally:
        c.close()


def _events(tmp_path: Path, seed: int, hours: float) -> list[bytes]:
    stream = tmp_path / f"stream{seed}.jsonl"
    write_stream(stream, QUJIANG, seed=seed, hours=hours)
    out = tmp_path / f"events{seed}.jsonl"
    replay(open_engine(Settings.from_env(os.environ)), [stream], out)
    return out.read_bytes().splitlines()


def _opened(events: list[bytes]) -> set[str]:
    return {e["incident_id"] for e in map(orjson.loads, events) if e["event"] == "opened"}


def _dispatched(client: redis.Redis) -> set[str]:
    """The incidents that have an order, from the orders in Redis (their hashes)."""
    pipe = client.pipeline(transaction=False)
    for oid in client.zrange(keys.ORDERS_BY_CREATED, 0, -1):
        pipe.hget(keys.order(oid.decode()), "incident_id")
    return {i.decode() for i in pipe.execute() if i}


def _until(check: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s: {what}\n{logs()}")


def _publish(kafka: KafkaTestClient, topic: str, events: list[bytes]) -> None:
    kafka.produce(topic, ((event_key(parse_event(e)).encode(), e) for e in events))


def _committed_all(kafka: KafkaTestClient, topics: Topics) -> bool:
    ends = kafka.end_offsets(topics.incidents)
    group = os.environ["FIREWATCH_KAFKA_GROUP"] + ".dispatch"
    return kafka.committed(topics.incidents, group, len(ends)) == {
        p: (end or None) for p, end in ends.items()
    }


def test_every_opened_incident_gets_one_order_and_redis_outages_pause_without_loss(
    tmp_path: Path,
    topics: Topics,
    kafka: KafkaTestClient,
    procs: Processes,
    redis_server: RedisProcess,
    client: redis.Redis,
) -> None:
    first, second = _events(tmp_path, seed=2, hours=4), _events(tmp_path, seed=3, hours=4)
    events = first + second
    assert _opened(first) and _opened(second) and not _opened(first) & _opened(second)
    asyncio.run(ensure_topics(kafka.bootstrap, topics))
    _publish(kafka, topics.incidents, first[:5])
    kafka.produce(topics.incidents, [(b"junk", b"not an incident event")])
    _publish(kafka, topics.incidents, first[5:])
    procs.dispatcher()
    _until(lambda: _dispatched(client) == _opened(first), 60, "first orders", procs.log_tail)
    _until(lambda: _committed_all(kafka, topics), 30, "offsets committed", procs.log_tail)
    assert "is not an incident or device event, skipped" in procs.log_text("dispatcher")

    redis_server.kill()  # SIGKILL: Redis gone while incident events keep coming
    _publish(kafka, topics.incidents, second)
    _until(
        lambda: "Redis unreachable for" in procs.log_text("dispatcher"),
        30,
        "a warning saying how long Redis has been unreachable",
        procs.log_tail,
    )
    assert not _committed_all(kafka, topics)  # nothing past what Redis has
    redis_server.start()  # on its append-only file
    _until(lambda: _dispatched(client) == _opened(events), 90, "all orders", procs.log_tail)
    _until(lambda: _committed_all(kafka, topics), 30, "offsets committed", procs.log_tail)
    assert "Redis answers again" in procs.log_text("dispatcher")
    assert client.zcard(keys.ORDERS_BY_CREATED) == len(_opened(events))  # none twice
    for e in map(orjson.loads, events):
        if e["event"] == "opened":  # each order knows when its fire was first seen
            oid = client.get(keys.incident(e["incident_id"])).decode()
            detected = float(client.hget(keys.order(oid), "detected_at"))
            assert detected == datetime.fromisoformat(e["first_seen"]).timestamp()
    # device health's events became maintenance: every device registered once, every outage
    # an order (none twice), and not one of them a fire warning
    parsed = [orjson.loads(e) for e in events]
    kinds = [e["event"] for e in parsed]
    new = {e["device_id"] for e in parsed if e["event"] == "device_new"}  # both days' devices
    assert client.hlen(keys.DEVICES) == len(new) > 0
    outages = kinds.count("device_down") + kinds.count("cell_blind")
    assert len(client.keys(keys.maintenance("mnt-*"))) == outages  # (none in 4 hours)


def _fast_rules(tmp_path: Path) -> Path:
    """The rules with a 2 s SLA and escalation every second."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    routing = yaml.safe_load((rules / "routing.yaml").read_text())
    routing["routing"]["sla"] = {s: "2s" for s in ("low", "moderate", "high", "critical")}
    routing["routing"]["top_renotify_max"] = "2s"
    routing["routing"]["escalate_every"] = "1s"
    (rules / "routing.yaml").write_text(yaml.safe_dump(routing))
    return rules


def test_two_dispatchers_escalate_each_order_once_per_step(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    topics: Topics,
    kafka: KafkaTestClient,
    procs: Processes,
    client: redis.Redis,
) -> None:
    monkeypatch.setenv("FIREWATCH_RULES", str(_fast_rules(tmp_path)))
    events = _events(tmp_path, seed=2, hours=4)
    asyncio.run(ensure_topics(kafka.bootstrap, topics))
    procs.dispatcher()
    procs.dispatcher()
    time.sleep(5)  # both in the group
    _publish(kafka, topics.incidents, events)
    _until(lambda: _dispatched(client) == _opened(events), 60, "orders", procs.log_tail)
    time.sleep(9)  # several SLA periods: 4 or more escalation steps per order
    procs.stop_all()
    steps_total = 0
    for incident in _opened(events):
        oid = client.get(keys.incident(incident)).decode()
        log = client.xrange(keys.order_log(oid))
        steps = [f for _, f in log if f[b"kind"] == b"escalated"]
        numbers = [
            int(f[b"detail"].decode().rsplit("escalation ", 1)[1].rstrip(")")) for f in steps
        ]
        assert numbers == list(range(1, len(numbers) + 1)), (oid, numbers)
        assert len(numbers) >= 3, (oid, numbers)
        at = [float(f[b"at"]) for f in steps]
        gaps = [b - a for a, b in itertools.pairwise(at)]
        assert min(gaps) >= 1.9, (oid, gaps)  # one step per SLA period: never two at once
        assert int(client.hget(keys.order(oid), "escalations")) == len(numbers)
        steps_total += len(numbers)
    assert steps_total >= 3 * len(_opened(events))


def _changelog_stats(kafka: KafkaTestClient) -> dict[str, Any]:
    """Suppressions in the latest saved state of every region (the worker's table)."""
    stats: dict[str, Any] = {"suppressed": 0, "by": {}}
    for state in saved_states(kafka):
        stats["suppressed"] += state["stats"]["outcomes"].get("suppressed", 0)
        stats["by"].update(state["stats"]["suppressed_by"])
    return stats


def test_a_false_alarm_closed_on_the_cli_suppresses_the_next_detection_on_a_worker(
    topics: Topics, kafka: KafkaTestClient, procs: Processes, client: redis.Redis
) -> None:
    """The closed loop across processes: CLI close -> Redis mask (atomic with the close) ->
    dispatcher -> compacted masks topic -> worker -> a later detection there is suppressed."""
    asyncio.run(ensure_topics(kafka.bootstrap, topics))
    procs.worker("--loglevel", "info")
    procs.dispatcher()
    now = datetime.now(UTC)
    place = {"lat": 29.255014, "lon": 118.8857535}  # inside cell QJ-r009c014
    kiln = {"source": "camera", "device_id": "cam-kiln", "confidence": 0.95, "label": "flame"}
    first = {**kiln, **place, "id": "kiln-1", "observed_at": (now - timedelta(minutes=30))}
    kafka.produce(topics.detections, [(b"cam-kiln", orjson.dumps(first))])
    incident = _until(lambda: _dispatched(client), 60, "the kiln's order", procs.log_tail).pop()
    order = client.get(keys.incident(incident)).decode()
    closing = ["dispatch", "close", order, "--outcome", "false_alarm"]
    assert main([*closing, "--cause", "known_heat_source", "--note", "brick kiln"]) == 0
    mask = f"false-alarm-{order}"
    assert client.hget(keys.MASKS, mask)
    _until(
        lambda: [m for m in kafka.read_all(topics.masks) if m.key == mask.encode()],
        30,
        "the mask on the masks topic",
        procs.log_tail,
    )
    _until(lambda: mask in procs.log_text("worker"), 30, "the worker applying it", procs.log_tail)
    again = {**kiln, **place, "id": "kiln-2", "observed_at": datetime.now(UTC)}
    kafka.produce(topics.detections, [(b"cam-kiln", orjson.dumps(again))])
    stats = _until(
        lambda: (s := _changelog_stats(kafka))["suppressed"] and s,
        60,
        "the second detection counted as suppressed",
        procs.log_tail,
    )
    assert stats == {"suppressed": 1, "by": {mask: 1}}
    raw = [orjson.loads(m.value) for m in kafka.read_all(topics.incidents)]
    incidents = [e for e in raw if "incident_id" in e]  # device health's events aside
    assert {(e["incident_id"], e["event"]) for e in incidents} == {(incident, "opened")}
