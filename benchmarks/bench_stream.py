"""One `firewatch worker` on a real Kafka broker: sustained throughput, ingest-to-incident latency.

    .venv/bin/python benchmarks/bench_stream.py [--sensors 3000] [--rate 10000]

1. Throughput: the simulated Qujiang stream is produced first; then one worker starts and the
   rate is records / (time from its first committed offset to the moment both agents have
   committed everything). Commits come every few seconds, so the stream is made long enough for
   that to be a small error.
2. Latency: a worker runs; a stream with many fires is offered at --rate records/s; for every
   opened/updated incident event, latency = when it was read back from the incidents topic minus
   when the detection it reports (its observed_at) was produced. The grace period is in event
   time: at this offer rate the simulated day passes in seconds, so it adds only milliseconds.
The broker is scripts/kafka.sh's, on its own port and folder, stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from machine import describe, write_section  # noqa: E402

from firewatch.settings import Settings  # noqa: E402
from firewatch.simulate import write_stream  # noqa: E402
from firewatch.stream.produce import produce  # noqa: E402
from firewatch.stream.topics import Topics, ensure_topics  # noqa: E402

PORT = "39492"
BOOTSTRAP = f"127.0.0.1:{PORT}"
GRID = ROOT / "data/grids/qujiang.geojson"


def kafka(*args: str) -> str:
    env = {**os.environ, "FIREWATCH_KAFKA_PORT": PORT, "FIREWATCH_KAFKA_DIR": "var/kafka-bench"}
    done = subprocess.run(
        ["bash", "scripts/kafka.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode not in (0, 3):
        raise SystemExit(f"kafka.sh {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def environment(tag: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for kind in ("detections", "located", "incidents", "rejects"):
        env[f"FIREWATCH_TOPIC_{kind.upper()}"] = f"{kind}-{tag}"
    env.update(
        FIREWATCH_KAFKA_BOOTSTRAP=BOOTSTRAP,
        FIREWATCH_KAFKA_PARTITIONS="4",
        FIREWATCH_KAFKA_GROUP=f"bench-{tag}",
        FIREWATCH_STATE_DIR=str(tmp / f"faust-{tag}"),
        FIREWATCH_CACHE_DIR=str(tmp / "cache"),
    )
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "firewatch", "worker", "--idle-release", "3"],
            cwd=ROOT,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )


async def lag(topic: str, group: str, partitions: int) -> tuple[int, int]:
    """(committed, end) summed over the topic's partitions, for the workers' group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        committed = [await consumer.committed(tp) or 0 for tp in tps]
        return sum(committed), sum(ends.values())
    finally:
        await consumer.stop()


async def throughput(env: dict[str, str], stream: Path, tmp: Path) -> tuple[int, float]:
    topics = Topics.of(Settings.from_env(env))
    await ensure_topics(BOOTSTRAP, topics)
    sent = (await produce([stream], BOOTSTRAP, topics.detections)).sent
    worker = start_worker(env, tmp / "throughput.log")
    group = env["FIREWATCH_KAFKA_GROUP"]
    try:
        started = None
        while True:
            done, end = await lag(topics.detections, f"{group}.locate", topics.partitions)
            if started is None and done > 0:
                started = time.monotonic()
            if started is not None and done == end:
                located_done, located_end = await lag(topics.located, group, topics.partitions)
                if located_done == located_end:
                    return sent, time.monotonic() - started
            await asyncio.sleep(0.25)
    finally:
        worker.terminate()
        worker.wait()


async def latency(env: dict[str, str], stream: Path, tmp: Path, rate: float) -> list[float]:
    topics = Topics.of(Settings.from_env(env))
    await ensure_topics(BOOTSTRAP, topics)
    worker = start_worker(env, tmp / "latency.log")
    await asyncio.sleep(12)  # the worker joins its group and is assigned its partitions
    lines = [line for line in stream.read_bytes().splitlines() if line.strip()]
    stamps: list[tuple[float, float]] = []  # (observed_at, when produced), in production order
    received: list[tuple[float, bytes]] = []
    consumer = AIOKafkaConsumer(
        topics.incidents, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest"
    )
    await consumer.start()

    async def read() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=50)
            now = time.time()
            received.extend((now, m.value) for ms in batches.values() for m in ms)

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
            await producer.send(topics.detections, line)
            if observed is not None:
                stamps.append((observed, time.time()))
            ahead = (n + 1) / rate - (time.monotonic() - start)
            if ahead > 0.002:
                await asyncio.sleep(ahead)
        await producer.flush()
        await asyncio.sleep(10)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
        worker.terminate()
        worker.wait()
    return _latencies(stamps, received)


def _latencies(
    stamps: list[tuple[float, float]], received: list[tuple[float, bytes]]
) -> list[float]:
    """For each opened/updated event: read time minus the production time of the first record
    (in event time order) at or after its observed_at."""
    stamps.sort()
    keys = [s[0] for s in stamps]
    out = []
    for when, value in received:
        event = orjson.loads(value)
        if event["event"] == "closed":
            continue
        observed = datetime.fromisoformat(event["observed_at"]).timestamp()
        i = bisect.bisect_left(keys, observed)
        if i < len(stamps):
            out.append(when - stamps[i][1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    print(kafka("start", "--fresh"))
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            big = tmp / "big.jsonl"
            write_stream(big, GRID, seed=1, hours=24, sensors=args.sensors)
            sent, seconds = asyncio.run(
                throughput(environment(uuid.uuid4().hex[:8], tmp), big, tmp)
            )
            fires = tmp / "fires.jsonl"
            write_stream(fires, GRID, seed=3, hours=24, fires=120)
            lat = sorted(
                asyncio.run(latency(environment(uuid.uuid4().hex[:8], tmp), fires, tmp, args.rate))
            )
    finally:
        kafka("stop")
    rate = sent / seconds
    p50 = lat[len(lat) // 2] * 1000 if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    lines = [
        f"throughput, one worker: {sent:,} detections in {seconds:.1f} s = {rate:,.0f}/s "
        "(target 50,000/s)",
        f"latency at {args.rate:,.0f}/s offered, {len(lat)} incident events: p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms (target p99 <= 250 ms)",
    ]
    print("\n".join(lines))
    if not args.no_readme:
        write_section(
            "Stream",
            "## Stream\n\n`python benchmarks/bench_stream.py`: one `firewatch worker` process on a "
            "real single-node Kafka 4.0.2 broker (scripts/kafka.sh), 4 partitions per topic.\n\n"
            f"Machine: {describe()}\n\n" + "\n".join(f"- {line}" for line in lines) + "\n",
        )


if __name__ == "__main__":
    main()
