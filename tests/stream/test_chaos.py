"""The chaos run: the whole path from sensor to team, on the real broker and a real redis-server,
while its parts are killed. The proof that every promise holds under these faults:

    a simulated Qujiang day with known fires, produced at a steady rate to two workers and a
    dispatcher; a false alarm closed on the command line early on (its mask made before the
    faults); then, while records keep coming: kill -9 a worker (and start its replacement),
    kill -9 the dispatcher (and start it again), kill -9 redis-server (restarted on its
    append-only file), stop and restart the Kafka broker.

At the end the orders in Redis are exactly the incidents `firewatch replay` opens on the same
input (same ids, none twice), every order's log is a valid lifecycle, and the mask made before
the faults still suppresses a new detection at its place (counted in the worker's saved state).
The test prints what it injected and when, and what it checked.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis

from firewatch.cli import main
from firewatch.linkage import keys
from firewatch.linkage.server import RedisProcess
from firewatch.replay import replay
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.simulate import write_stream
from firewatch.stream.produce import produce
from firewatch.stream.topics import Topics, ensure_topics
from firewatch.stream.watchdog import EXIT_STALLED

from ..kafka_fixtures import KafkaScript, KafkaTestClient
from .conftest import ROOT, Processes
from .test_dispatcher import _changelog_stats, _dispatched, _until

QUJIANG = ROOT / "data/grids/qujiang.geojson"
CHUNK = 400  # lines per send
EVERY = 0.25  # seconds between sends: 1,600 lines/s
# the order an order's log may move in: kinds that change its state, each at most once
STEPS = ("created", "ack", "arrive", "close")
ANYTIME = {"notified", "escalated", "severity", "reached", "incident_closed", "mask"}


class Timeline:
    """What was injected and checked, and when (seconds since the start), printed at the end."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.lines: list[str] = []

    def __call__(self, what: str) -> None:
        line = f"{time.monotonic() - self.began:6.1f} s  {what}"
        self.lines.append(line)
        print(line, flush=True)


def lifecycle_problem(kinds: list[str]) -> str | None:
    """Why an order's log is not a valid lifecycle (None: it is)."""
    if not kinds or kinds[0] != "created":
        return f"does not start with `created`: {kinds[:3]}"
    steps = [k for k in kinds if k in STEPS]
    if len(steps) != len(set(steps)):
        return f"a step twice: {steps}"
    if steps != [s for s in STEPS if s in steps]:
        return f"steps out of order: {steps}"
    if "arrive" in steps and "ack" not in steps:
        return "on scene without an acknowledgement"
    unknown = set(kinds) - set(STEPS) - ANYTIME
    if unknown:
        return f"unknown entries {sorted(unknown)}"
    if "close" in kinds and "escalated" in kinds[kinds.index("close") :]:
        return "escalated after it was closed"
    return None


def _restart_broker(script: KafkaScript, log: Timeline) -> None:
    log("fault: Kafka broker stopped (scripts/kafka.sh stop)")
    script.stop()
    time.sleep(3)
    script.start()
    log("        Kafka broker started again on its data")


@pytest.mark.timeout(600)
def test_sensor_to_team_survives_kills_of_every_part(
    tmp_path: Path,
    topics: Topics,
    kafka: KafkaTestClient,
    kafka_script: KafkaScript,
    procs: Processes,
    redis_server: RedisProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = Timeline()
    client = redis_server.client()
    stream = tmp_path / "stream.jsonl"
    sim = write_stream(stream, QUJIANG, seed=11, hours=24, fires=12)
    replayed = tmp_path / "replayed.jsonl"
    replay(open_engine(Settings.from_env(os.environ)), [stream], replayed)
    events = [orjson.loads(line) for line in replayed.read_bytes().splitlines()]
    expected = {e["incident_id"] for e in events if e["event"] == "opened"}
    lines = [line for line in stream.read_bytes().splitlines() if line.strip()]
    log(f"input: {len(lines):,} lines, {len(sim.fires)} fires; the replay opens {len(expected)}")
    assert len(expected) >= 10

    asyncio.run(ensure_topics(kafka.bootstrap, topics))
    stall = ("--stall-after", "20")  # a stalled table recovery: exit 75, restarted below
    first = procs.worker(*stall)
    procs.worker(*stall)
    dispatcher = procs.dispatcher()
    time.sleep(5)  # the groups formed before input, as in production
    chunks = [lines[i : i + CHUNK] for i in range(0, len(lines), CHUNK)]
    part = tmp_path / "chunk.jsonl"
    n = len(chunks)
    mask_name = ""
    faults: dict[int, Callable[[], None]] = {}

    def kill_worker() -> None:
        log("fault: kill -9 worker 1; starting its replacement")
        first.kill()
        first.wait()
        procs.worker(*stall)

    def kill_dispatcher() -> None:
        log("fault: kill -9 the dispatcher; starting it again")
        dispatcher.kill()
        dispatcher.wait()
        procs.dispatcher()

    def kill_redis() -> None:
        log("fault: kill -9 redis-server")
        redis_server.kill()
        time.sleep(3)
        redis_server.start()
        log("        redis-server started again on its append-only file")

    faults[n * 3 // 10] = kill_worker
    faults[n * 5 // 10] = kill_dispatcher
    faults[n * 6 // 10] = kill_redis
    faults[n * 8 // 10] = lambda: _restart_broker(kafka_script, log)
    log(f"producing {n} sends of {CHUNK} lines every {EVERY} s")

    def supervise() -> None:
        for line in procs.supervise():
            log(f"supervisor: {line}")

    for i, chunk in enumerate(chunks):
        supervise()
        if i in faults:
            if not mask_name:  # the false alarm is closed before the first fault, whatever it takes
                _until(lambda: _dispatched(client), 60, "a first order", procs.log_tail)
                mask_name = _close_false_alarm(client, log)
            faults[i]()
        part.write_bytes(b"\n".join(chunk) + b"\n")  # sent as `firewatch produce` sends a file:
        asyncio.run(produce([part], kafka.bootstrap, topics.detections))  # in event-time order
        if not mask_name and _dispatched(client):
            mask_name = _close_false_alarm(client, log)
        time.sleep(EVERY)
    log("input ended")
    supervise()
    killed = {first, dispatcher}
    dead = [
        p.args
        for p in procs.processes
        if p not in killed and p.poll() is not None and p.returncode != EXIT_STALLED
    ]
    assert not dead, f"died of the faults: {dead}\n{procs.log_tail()}"
    log("checked: no process died but those killed on purpose (and any restarted above)")
    assert mask_name, "no order to close before the faults"

    deadline = time.monotonic() + 240
    while not _dispatched(client) >= expected and time.monotonic() < deadline:
        supervise()
        time.sleep(1)
    time.sleep(5)  # anything wrong still on its way shows up too
    got = _dispatched(client)
    log(f"checked: orders in Redis for {len(got)} incidents, the replay opens {len(expected)}")
    assert got == expected, _why(kafka, topics, got, expected, events) + procs.log_tail()
    assert client.zcard(keys.ORDERS_BY_CREATED) == len(expected)  # no order twice
    log("checked: no incident has two orders")
    for incident in sorted(expected):
        oid = client.get(keys.incident(incident)).decode()
        kinds = [f[b"kind"].decode() for _, f in client.xrange(keys.order_log(oid))]
        assert lifecycle_problem(kinds) is None, (oid, kinds, lifecycle_problem(kinds))
    log(f"checked: all {len(expected)} order logs are valid lifecycles")

    assert client.hget(keys.MASKS, mask_name), "the mask made before the faults is gone"
    mask = orjson.loads(client.hget(keys.MASKS, mask_name))
    kiln = {
        "id": "chaos-kiln",
        "source": "camera",
        "device_id": "chaos-kiln",
        "observed_at": datetime.now(UTC).isoformat(),
        "lat": mask["circle"]["lat"],
        "lon": mask["circle"]["lon"],
        "confidence": 0.95,
        "label": "flame",
    }
    before = _changelog_stats(kafka)["by"].get(mask_name, 0)
    kafka.produce(topics.detections, [(b"chaos-kiln", orjson.dumps(kiln))])
    _until(
        lambda: _changelog_stats(kafka)["by"].get(mask_name, 0) == before + 1,
        60,
        "a new detection at the mask's place suppressed",
        procs.log_tail,
    )
    time.sleep(3)
    assert _dispatched(client) == expected  # and it opened nothing
    log(f"checked: mask {mask_name}, made before the faults, still suppresses")
    with capsys.disabled():  # in the test run's output, pass or fail
        print("\n".join(["", "chaos run:", *log.lines]))


def _why(
    kafka: KafkaTestClient,
    topics: Topics,
    got: set[str],
    expected: set[str],
    replayed: list[dict[str, object]],
) -> str:
    """What differs, and where it went missing: on the incidents topic, or between it and Redis."""
    raw = [orjson.loads(m.value) for m in kafka.read_all(topics.incidents)]
    opened = {e["incident_id"] for e in raw if e["event"] == "opened"}
    lines = [
        f"orders for incidents the replay does not open: {sorted(got - expected)}",
        f"incidents the replay opens without an order: {sorted(expected - got)}",
        f"  of those, opened on the incidents topic: {sorted((expected - got) & opened)}",
        f"incidents opened on the topic but not by the replay: {sorted(opened - expected)}",
        f"events on the topic {len(raw)}, distinct {len({e['event_id'] for e in raw})}, "
        f"replay {len(replayed)}",
    ]
    return "\n".join(lines) + "\n"


def _close_false_alarm(client: redis.Redis, log: Timeline) -> str:
    """Close the first order as a false alarm at a known heat source, with the CLI."""
    oid = client.zrange(keys.ORDERS_BY_CREATED, 0, 0)[0].decode()
    args = ["dispatch", "close", oid, "--outcome", "false_alarm", "--cause", "known_heat_source"]
    assert main(args) == 0
    log(f"closed {oid} as false_alarm/known_heat_source on the command line (mask made)")
    return f"false-alarm-{oid}"
