"""One `firewatch worker` on a real Kafka broker: sustained throughput, ingest-to-incident latency.

    .venv/bin/python benchmarks/bench_stream.py [--sensors 3000] [--rate 10000]

1. Throughput: the simulated Qujiang stream is produced once to a detections topic; then, three
   times, one worker starts with a consumer group and downstream topics of its own, and the rate
   is records / (time from its first committed offset to the moment both stages have committed
   everything). The last commit comes up to a couple of seconds after the last record is done
   (a checkpoint, then Faust's commit), so the stream is made long enough for that to be a small
   error.
2. Latency: a worker and a dispatcher (on a redis-server with appendfsync always) run; a stream
   with many fires is offered at --rate records/s; for every opened/updated incident event,
   latency = when it was read back from the incidents topic minus when the detection it reports
   (its observed_at) was produced; the worker alone: the event's Kafka timestamp (when the
   worker's producer took it) minus the broker's append time of that detection (the detections
   topic has LogAppendTime), without the benchmark's own producer and consumer; for every
   dispatch order, detection to dispatch = its
   created_at minus when its incident's first detection (the order's detected_at) was produced.
   The grace period is in event time: at this offer rate the simulated day passes in seconds, so
   it adds only milliseconds.
The broker is scripts/kafka.sh's, on its own port and folder, stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import orjson  # noqa: E402
import redis  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from aiokafka.errors import KafkaError  # noqa: E402
from machine import describe, write_section  # noqa: E402

from firewatch.linkage import keys  # noqa: E402
from firewatch.linkage.server import RedisProcess  # noqa: E402
from firewatch.replay import replay  # noqa: E402
from firewatch.rules.load import load_rules  # noqa: E402
from firewatch.runtime import open_engine  # noqa: E402
from firewatch.settings import Settings  # noqa: E402
from firewatch.simulate import write_stream  # noqa: E402
from firewatch.stream.produce import produce, records  # noqa: E402
from firewatch.stream.topics import Topics, ensure_topics  # noqa: E402

PORT = "39492"
BOOTSTRAP = f"127.0.0.1:{PORT}"
GRID = ROOT / "data/grids/qujiang.geojson"
GRACE_S = load_rules(ROOT / "rules").incidents.grace.total_seconds()
SECTION = """## Stream

`python benchmarks/bench_stream.py`: one `firewatch worker` process (Faust 0.15.3, aiokafka 0.14.0)
on a real single-node Kafka 4.0.2 broker (scripts/kafka.sh) on the same machine, 4 partitions per
topic.

- Throughput: the simulated Qujiang stream (3,000 sensors, {hours} h) is produced once by
  `firewatch produce` (several lines a message, packed per partition: stream/pack.py), then one
  worker starts; records / time from its first commit on the detections topic until both stages
  have committed everything (the incidents stage acks at its checkpoints and Faust commits every
  second after, so the end is late by one to two seconds: the figure errs low). Three runs, each
  a worker with consumer groups and located, incidents and rejects topics of its own on the same
  detections topic; the median is reported. Then the same with the stream produced one line a
  message (as a sensor that sends each reading alone).
- Baseline, same run: the engine alone on the same lines (`firewatch replay` in the
  benchmark's process, median of as many runs); target: one worker carries at least 0.7 of it,
  and at least 150,000 detections/s (issue #11).
- Second baseline, same run: a naive Faust agent (benchmarks/naive_worker.py) that awaits per
  event and calls the engine with one detection at a time, on a 6 h stream of the same sensors.
- Latency: a 72 h stream with 360 fires offered at 10,000 records/s, one line a message, to a
  running worker; for each opened/updated event, the time it is read from the incidents topic
  minus the time the detection at its observed_at was produced. It includes the rules' 10 min
  grace period, which is event time: at this offer rate 72 h of events pass in about 19 s, so the
  grace is about the figure in brackets. The last fires' events, released by the idle release
  after the stream ends, are not counted ({tail} this run). The worker alone, same events: the
  event's Kafka timestamp (when the worker's producer took it) minus the broker's append time of
  that detection (the detections topic has LogAppendTime): without the benchmark's own producer
  queue and consumer, which share the machine's two cores with the worker and the broker.
- Detection to dispatch, same run: a `firewatch dispatcher` on a redis-server (appendfsync
  always) turns the incidents into dispatch orders; for each order, its `created_at` minus the
  time its incident's first detection (`detected_at`) was produced: sensor to team, including the
  worker, the incidents topic, the dispatcher and Redis. Target: p99 under 1 s plus the grace (as
  it passes at this rate). Orders of the incidents released by the idle release are not counted.

Machine: {machine}

| run | result | target |
|---|---|---|
{table}

Before the locate stage read the detections topic in batches with aiokafka (2026-11-28, same
machine), it was a Faust agent with `take_events`: 8,401 detections/s and p99 5,311 ms at
10,000/s offered (the worker fell behind), with one located message per detection 2,813/s.
"""


def kafka(*args: str) -> str:
    env = {**os.environ, "FIREWATCH_KAFKA_PORT": PORT, "FIREWATCH_KAFKA_DIR": "var/kafka-bench"}
    done = subprocess.run(
        ["bash", "scripts/kafka.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode not in (0, 3):
        raise SystemExit(f"kafka.sh {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def environment(tag: str, tmp: Path, detections: str | None = None) -> dict[str, str]:
    """A worker's settings: topics and group named by `tag`; `detections`: read that topic
    instead (one produced for several runs)."""
    env = dict(os.environ)
    for kind in ("detections", "located", "incidents", "rejects", "masks"):
        env[f"FIREWATCH_TOPIC_{kind.upper()}"] = f"{kind}-{tag}"
    if detections is not None:
        env["FIREWATCH_TOPIC_DETECTIONS"] = detections
    env.update(
        FIREWATCH_KAFKA_BOOTSTRAP=BOOTSTRAP,
        FIREWATCH_KAFKA_PARTITIONS="4",
        FIREWATCH_KAFKA_GROUP=f"bench-{tag}",
        FIREWATCH_STATE_DIR=str(tmp / f"faust-{tag}"),
        FIREWATCH_CACHE_DIR=str(tmp / "cache"),
    )
    return env


IDLE = 3.0  # the worker's --idle-release
WORKER = [sys.executable, "-m", "firewatch", "worker", "--idle-release", str(IDLE)]
DISPATCHER = [sys.executable, "-m", "firewatch", "dispatcher"]
NAIVE = [sys.executable, str(ROOT / "benchmarks/naive_worker.py"), "worker", "-l", "warn"]


def start_worker(env: dict[str, str], log: Path, command: list[str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)


class Progress:
    """Committed and end offsets, polled through one admin client and one consumer (a consumer
    per poll took long enough to blur the end of a 10 s run)."""

    async def __aenter__(self) -> Progress:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def lag(self, topic: str, group: str, partitions: int) -> tuple[int, int]:
        """(committed, end) summed over the topic's partitions, for a consumer group."""
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await self.consumer.end_offsets(tps)
        committed = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        return sum(c.offset for c in committed.values() if c.offset > 0), sum(ends.values())


async def produced(stream: Path, tmp: Path, packed: bool = True) -> tuple[str, int]:
    """The stream on a detections topic of its own (its name, lines sent). `packed`: by
    `firewatch produce` (several lines a message, stream/pack.py); else one line a message, as a
    sensor sending each reading alone (the naive agent reads nothing else)."""
    topics = Topics.of(Settings.from_env(environment(_tag(), tmp)))
    await ensure_topics(BOOTSTRAP, topics)
    if packed:
        return topics.detections, (await produce([stream], BOOTSTRAP, topics.detections)).sent
    return topics.detections, await produce_singly(stream, topics.detections)


async def throughput(
    tmp: Path, detections: tuple[str, int], naive: bool = False
) -> tuple[int, float]:
    """Records / seconds from the worker's first commit on the detections topic (`produced`)
    until every stage has committed everything (the firewatch worker: both its groups); the
    worker's groups and its other topics are its own."""
    env = environment(_tag(), tmp, detections[0])
    topics, sent = Topics.of(Settings.from_env(env)), detections[1]
    await ensure_topics(BOOTSTRAP, topics)
    group = env["FIREWATCH_KAFKA_GROUP"]
    stages = [(topics.detections, group)]
    if not naive:
        stages = [(topics.detections, f"{group}.locate"), (topics.located, group)]
    name = "naive" if naive else "throughput"
    worker = start_worker(env, tmp / f"{name}.log", NAIVE if naive else WORKER)
    try:
        async with Progress() as progress:
            started = None
            while True:
                try:
                    lags = [await progress.lag(t, g, topics.partitions) for t, g in stages]
                except KafkaError:  # the group's coordinator is not known yet
                    await asyncio.sleep(0.1)
                    continue
                if started is None and lags[0][0] > 0:
                    started = time.monotonic()
                if started is not None and all(done == end for done, end in lags):
                    return sent, time.monotonic() - started
                if worker.poll() is not None:
                    raise SystemExit(f"the {name} worker died: see {tmp / name}.log")
                await asyncio.sleep(0.02)
    finally:
        worker.terminate()
        worker.wait()


async def produce_singly(stream: Path, topic: str) -> int:
    """Each line of the stream a message of its own, keyed by its device id (as a sensor sends
    it); returns how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    try:
        pending = []
        for key, value, _ in records(stream, []):
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def engine_alone(stream: Path, tmp: Path, runs: int) -> tuple[int, list[float]]:
    """The baseline of issue #11: the engine alone on the same lines, in this process, as
    `firewatch replay` runs it (read, validate, locate, rules, incidents, write events)."""
    settings = Settings(grid=GRID, rules=ROOT / "rules", cache_dir=tmp / "cache")
    rates, records = [], 0
    for _ in range(runs):
        engine = open_engine(settings)
        began = time.perf_counter()
        summary = replay(engine, [stream], tmp / "engine-events.jsonl", now=datetime.now(UTC))
        records = summary.stats["records"]
        rates.append(records / (time.perf_counter() - began))
    return records, rates


class Latency(NamedTuple):
    events: list[float]  # seconds, every event but `closed` (incident and device events)
    worker: list[float]  # seconds, the same events from the detection's append to the event's
    incidents: list[float]  # seconds, the incidents' opened/updated events alone
    tail: int  # events released by the idle release: not counted
    dispatch: list[float]  # seconds, detection to dispatch order
    dispatch_tail: int


async def latency(env: dict[str, str], stream: Path, tmp: Path, rate: float) -> Latency:
    topics = Topics.of(Settings.from_env(env))
    await ensure_topics(BOOTSTRAP, topics)
    redis_server = RedisProcess(tmp / "redis")
    redis_server.start()
    env = {**env, "FIREWATCH_REDIS_URL": redis_server.url}
    worker = start_worker(env, tmp / "latency.log", WORKER)
    dispatcher = start_worker(env, tmp / "dispatcher.log", DISPATCHER)
    await asyncio.sleep(12)  # the worker joins its group and is assigned its partitions
    lines = [line for line in stream.read_bytes().splitlines() if line.strip()]
    stamps: list[tuple[float, float]] = []  # (observed_at, when produced), in production order
    appended: list[tuple[float, asyncio.Future[Any]]] = []  # (observed_at, its delivery)
    received: list[tuple[float, bytes]] = []
    produced: list[tuple[float, bytes]] = []  # (the event's Kafka timestamp, the event)
    consumer = AIOKafkaConsumer(
        topics.incidents, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest"
    )
    await consumer.start()

    async def read() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=50)
            now = time.time()
            received.extend((now, m.value) for ms in batches.values() for m in ms)
            produced.extend((m.timestamp / 1000, m.value) for ms in batches.values() for m in ms)

    reader = asyncio.create_task(read())
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5)
    await producer.start()
    try:
        start = time.monotonic()
        for n, line in enumerate(lines):
            try:
                observed = datetime.fromisoformat(orjson.loads(line)["observed_at"]).timestamp()
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                observed = None
            delivery = await producer.send(topics.detections, line)
            if observed is not None:
                stamps.append((observed, time.time()))
                appended.append((observed, delivery))
            ahead = (n + 1) / rate - (time.monotonic() - start)
            if ahead > 0.002:
                await asyncio.sleep(ahead)
        await producer.flush()
        offered = time.time()
        await asyncio.sleep(10)
        orders = _orders(redis_server.client())
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
        for process in (worker, dispatcher):
            process.terminate()
            process.wait()
        redis_server.stop()
    # the last fires' events wait for the idle release at the end of the stream (IDLE s without
    # input, by design): they measure the end of the benchmark, not the pipeline
    tail = [r for r in received if r[0] > offered + IDLE - 0.5]
    late = [o for o in orders if o[1] > offered + IDLE - 0.5]
    timed = [r for r in received if r not in tail]
    # the broker's append time of each detection (LogAppendTime), as its delivery reports it
    appends = [(observed, delivery.result().timestamp / 1000) for observed, delivery in appended]
    counted = {value for _, value in timed}
    return Latency(
        _latencies(stamps, timed),
        _latencies(appends, [p for p in produced if p[1] in counted]),
        _latencies(stamps, timed, kinds={"opened", "updated"}),
        len(tail),
        _dispatch_latencies(stamps, [o for o in orders if o not in late]),
        len(late),
    )


def _grace_ms(lines: int, rate: float) -> float:
    """The rules' grace period in wall ms, as 72 h of event time pass when `lines` are offered
    at `rate` a second."""
    offered_s = lines / rate
    return GRACE_S / (72 * 3600 / offered_s) * 1000


def _latency_rows(measured: Latency, lines: int, rate: float) -> str:
    """The latency phase's figures: every event, the incidents' alone, detection to dispatch."""
    grace_ms = _grace_ms(lines, rate)
    rows = []
    for name, values in (
        ("every event but closed", measured.events),
        ("the same, the worker alone (append to append)", measured.worker),
        ("incident opened/updated", measured.incidents),
        ("detection to dispatch", measured.dispatch),
    ):
        ordered = sorted(values)
        rows.append(
            f"{name} ({len(ordered)}): p50 {_ms(ordered, 0.5):.0f} ms, "
            f"p99 {_ms(ordered, 0.99):.0f} ms (grace {grace_ms:.0f} ms)"
        )
    return "\n".join(rows)


def _orders(client: redis.Redis) -> list[tuple[float, float]]:
    """(detected_at, created_at) of every dispatch order, from the orders' hashes."""
    pipe = client.pipeline(transaction=False)
    for oid in client.zrange(keys.ORDERS_BY_CREATED, 0, -1):
        pipe.hmget(keys.order(oid.decode()), "detected_at", "created_at")
    return [(float(d), float(c)) for d, c in pipe.execute()]


def _dispatch_latencies(
    stamps: list[tuple[float, float]], orders: list[tuple[float, float]]
) -> list[float]:
    """For each order: created_at minus the production time of the first record (in event time
    order) at or after its detected_at."""
    stamps.sort()
    keys_ = [s[0] for s in stamps]
    out = []
    for detected, created in orders:
        i = bisect.bisect_left(keys_, detected)
        if i < len(stamps):
            out.append(created - stamps[i][1])
    return out


def _latencies(
    stamps: list[tuple[float, float]],
    received: list[tuple[float, bytes]],
    kinds: set[str] | None = None,
) -> list[float]:
    """For each event but `closed` (or of `kinds`): read time minus the production time of the
    first record (in event time order) at or after its observed_at."""
    stamps.sort()
    keys = [s[0] for s in stamps]
    out = []
    for when, value in received:
        event = orjson.loads(value)
        if event["event"] == "closed" or (kinds is not None and event["event"] not in kinds):
            continue
        observed = datetime.fromisoformat(event["observed_at"]).timestamp()
        i = bisect.bisect_left(keys, observed)
        if i < len(stamps):
            out.append(when - stamps[i][1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=3000)
    parser.add_argument("--hours", type=int, default=192, help="of the throughput stream")
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="throughput runs (median reported)")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--latency-only", action="store_true", help="the latency phase alone (prints, no README)"
    )
    args = parser.parse_args()
    print(f"machine: {describe()}")
    print(kafka("start", "--fresh"))
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            big, small, fires = tmp / "big.jsonl", tmp / "small.jsonl", tmp / "fires.jsonl"
            write_stream(big, GRID, seed=1, hours=args.hours, sensors=args.sensors)
            write_stream(small, GRID, seed=1, hours=6, sensors=args.sensors)
            span = write_stream(fires, GRID, seed=3, hours=72, fires=360)
            if args.latency_only:
                alone_phase = asyncio.run(latency(environment(_tag(), tmp), fires, tmp, args.rate))
                print(_latency_rows(alone_phase, span.lines, args.rate))
                return
            packed = asyncio.run(produced(big, tmp))
            runs = [asyncio.run(throughput(tmp, packed)) for _ in range(args.runs)]
            one_a_message = asyncio.run(produced(big, tmp, packed=False))
            singly = [asyncio.run(throughput(tmp, one_a_message)) for _ in range(args.runs)]
            alone = engine_alone(big, tmp, args.runs)
            small_topic = asyncio.run(produced(small, tmp, packed=False))
            naive_runs = [
                asyncio.run(throughput(tmp, small_topic, naive=True)) for _ in range(args.runs)
            ]
            measured = asyncio.run(latency(environment(_tag(), tmp), fires, tmp, args.rate))
    finally:
        kafka("stop")
    lat, tail = sorted(measured.events), measured.tail
    alone_lat = sorted(measured.worker)
    to_dispatch = sorted(measured.dispatch)
    rates = [sent / seconds for sent, seconds in runs]
    single_rates = [sent / seconds for sent, seconds in singly]
    single_rate = statistics.median(single_rates)
    naive_rates = [sent / seconds for sent, seconds in naive_runs]
    rate, naive_rate = statistics.median(rates), statistics.median(naive_rates)
    alone_rate = statistics.median(alone[1])
    p50, p99 = _ms(lat, 0.5), _ms(lat, 0.99)
    grace_ms = _grace_ms(span.lines, args.rate)
    rows = [
        (
            f"throughput, one worker, {runs[0][0]:,} detections",
            f"median of {len(rates)} runs **{rate:,.0f}/s** ({_each(rates)})",
            "150,000/s",
        ),
        (
            f"the same, one detection a message (as sensors send them), {singly[0][0]:,}",
            f"median of {len(single_rates)} runs **{single_rate:,.0f}/s** ({_each(single_rates)})"
            f"; packed / one a message = **{rate / single_rate:.2f}**",
            "",
        ),
        (
            f"baseline: the engine alone on the same lines (replay), {alone[0]:,}",
            f"median {alone_rate:,.0f}/s ({_each(alone[1])}); worker / engine alone "
            f"= **{rate / alone_rate:.2f}** (one a message: {single_rate / alone_rate:.2f})",
            ">= 0.7",
        ),
        (
            f"baseline: naive agent (per-event await, engine per detection), {naive_runs[0][0]:,}",
            f"median {naive_rate:,.0f}/s ({_each(naive_rates)}); worker / baseline "
            f"= **{rate / naive_rate:.0f}x**",
            "",
        ),
        (
            f"latency at {args.rate:,.0f}/s offered ({len(lat)} events)",
            f"p50 {p50:.0f} ms, **p99 {p99:.0f} ms** (of which grace {grace_ms:.0f} ms)",
            "p99 <= 250 ms",
        ),
        (
            "the same events, the worker alone (the detection's append to the event's)",
            f"p50 {_ms(alone_lat, 0.5):.0f} ms, **p99 {_ms(alone_lat, 0.99):.0f} ms**",
            "",
        ),
        (
            f"detection to dispatch at {args.rate:,.0f}/s offered ({len(to_dispatch)} orders)",
            f"p50 {_ms(to_dispatch, 0.5):.0f} ms, **p99 {_ms(to_dispatch, 0.99):.0f} ms**",
            f"p99 < 1 s + grace = {1000 + grace_ms:.0f} ms",
        ),
    ]
    print("\n".join(" | ".join(r) for r in rows))
    print(f"({tail} events released by the idle release after the stream ended: not counted)")
    print(f"({measured.dispatch_tail} orders of those incidents: not counted)")
    if not args.no_readme:
        table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
        section = SECTION.format(machine=describe(), table=table, tail=tail, hours=args.hours)
        write_section("Stream", section)


def _ms(sorted_seconds: list[float], q: float) -> float:
    if not sorted_seconds:
        return float("nan")
    return sorted_seconds[min(len(sorted_seconds) - 1, int(len(sorted_seconds) * q))] * 1000


def _each(rates: list[float]) -> str:
    return ", ".join(f"{r:,.0f}" for r in rates)


def _tag() -> str:
    return uuid.uuid4().hex[:8]


if __name__ == "__main__":
    main()
