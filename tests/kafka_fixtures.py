"""A real Apache Kafka broker for tests: a pytest plugin (tests/conftest.py registers it). No mocks.

scripts/kafka.sh runs a single-node KRaft broker whose jars Maven resolves from Maven Central into
its own cache. The tests use their own port and folder (127.0.0.1:39192, var/kafka-test), never a
developer's broker (39092, var/kafka). The run's summary names the Kafka version.

Fixtures
    kafka_script   scripts/kafka.sh for the test broker: start, stop, status, its pid and processes
    kafka_broker   the broker for the session, started fresh and stopped at the end: its bootstrap
    kafka          topics and raw bytes on that broker, through aiokafka (KafkaTestClient)

Without Java 17+ or Maven the Kafka tests skip, saying how to get them; with CI=true they fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from firewatch.stream.topics import all_partitions, reader
from tests.services import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "kafka.sh"
TEST_PORT = 39192
TEST_STATE_DIR = ROOT / "var" / "kafka-test"
NEED_TOOLS = (
    "Kafka tests need Java 17+ and Maven on PATH (apt-get install openjdk-17-jre-headless maven)"
)
# what scripts/kafka.sh says when java is missing or older than 17, or mvn is missing
SCRIPT_NEEDS_TOOLS = "Kafka needs Java 17+ and Maven on PATH"
NEED_CLIENT = "Kafka tests need aiokafka: pip install -e '.[dev]'"
# First run: Maven downloads about 45 MB of jars. Later runs take seconds.
START_TIMEOUT_S = 600

_started: list[str] = []


class KafkaScriptError(Exception):
    """scripts/kafka.sh exited non-zero; the message carries its stderr."""


@dataclass(frozen=True)
class KafkaScript:
    """scripts/kafka.sh with the test broker's port and state folder."""

    state_dir: Path
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "FIREWATCH_KAFKA_PORT": str(self.port),
            "FIREWATCH_KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "FIREWATCH_KAFKA_DIR": str(self.state_dir),
        }
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _checked(self, *args: str, timeout: float = 120) -> str:
        done = self.run(*args, timeout=timeout)
        if done.returncode != 0:
            raise KafkaScriptError(
                f"scripts/kafka.sh {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
            )
        return done.stdout.strip()

    def start(self, *, fresh: bool = False) -> str:
        """Start (idempotent) and return the bootstrap address the script printed."""
        args = ("start", "--fresh") if fresh else ("start",)
        return self._checked(*args, timeout=START_TIMEOUT_S).splitlines()[-1]

    def stop(self) -> None:
        self._checked("stop")

    def status(self) -> subprocess.CompletedProcess[str]:
        """Exit 0 and "running: ..." or exit 3 and "not running"."""
        return self.run("status")

    def version(self) -> str:
        classpath = self._checked("classpath", timeout=START_TIMEOUT_S)
        found = re.search(r"kafka_2\.13-([^:/]+)\.jar", classpath)
        return found.group(1) if found else "unknown version"

    def pid(self) -> int | None:
        """The pid in the script's pidfile, None when there is none."""
        try:
            return int((self.state_dir / "kafka.pid").read_text())
        except FileNotFoundError:
            return None

    def java_processes(self) -> list[int]:
        """Pids of every broker JVM running on this state folder's config, whoever started it."""
        listing = subprocess.run(
            ["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True
        ).stdout
        config = str(self.state_dir / "server.properties")
        return [
            int(line.split(None, 1)[0])
            for line in listing.splitlines()
            if "kafka.Kafka" in line and config in line
        ]


@dataclass(frozen=True)
class Consumed:
    key: bytes | None
    value: bytes
    partition: int
    offset: int
    timestamp: int  # ms: the broker's append time on a LogAppendTime topic (detections)


class KafkaTestClient:
    """Blocking helpers over aiokafka: each call runs its own event loop, clients closed after."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def new_topic(self, partitions: int, prefix: str = "test") -> str:
        """Create a topic with a unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.create_topic(name, partitions)
        return name

    def create_topic(self, name: str, partitions: int) -> None:
        asyncio.run(self._create_topic(name, partitions))

    def produce(
        self, topic: str, records: Iterable[tuple[bytes | None, bytes]]
    ) -> list[tuple[int, int]]:
        """Send (key, value) records with acks=all; (partition, offset) of each, in order."""
        return asyncio.run(self._produce(topic, list(records)))

    def consume(
        self, topic: str, count: int, *, group_id: str | None = None, timeout: float = 30
    ) -> list[Consumed]:
        """Read `count` records from the earliest offset; with a group, commit its position."""
        return asyncio.run(self._consume(topic, count, group_id, timeout))

    def read_all(self, topic: str) -> list[Consumed]:
        """Every record of the topic from its start to its end as of now (no group), tombstones
        included (value b""), partition by partition in offset order."""
        return asyncio.run(self._read_all(topic))

    def end_offsets(self, topic: str) -> dict[int, int]:
        return asyncio.run(self._end_offsets(topic))

    def committed(self, topic: str, group_id: str, partitions: int) -> dict[int, int | None]:
        """The group's committed offset per partition of the topic."""
        return asyncio.run(self._committed(topic, group_id, partitions))

    async def _create_topic(self, name: str, partitions: int) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=1)]
            )
        finally:
            await admin.close()
        for topic, code, *message in response.topic_errors:
            if code != 0:
                raise AssertionError(f"creating topic {topic}: error {code} {message}")

    async def _produce(
        self, topic: str, records: list[tuple[bytes | None, bytes]]
    ) -> list[tuple[int, int]]:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            pending = [await producer.send(topic, value, key=key) for key, value in records]
            sent = await asyncio.gather(*pending)
        finally:
            await producer.stop()
        return [(meta.partition, meta.offset) for meta in sent]

    async def _consume(
        self, topic: str, count: int, group_id: str | None, timeout: float
    ) -> list[Consumed]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        received: list[Consumed] = []
        try:
            deadline = time.monotonic() + timeout
            while len(received) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    received.extend(
                        Consumed(m.key, m.value, m.partition, m.offset, m.timestamp)
                        for m in batch
                        if m.value is not None
                    )
            if group_id is not None:
                await consumer.commit()
        finally:
            await consumer.stop()
        if len(received) < count:
            raise AssertionError(f"{topic}: {len(received)} of {count} records in {timeout} s")
        return received

    async def _read_all(self, topic: str) -> list[Consumed]:

        consumer = reader(self.bootstrap, topic)
        await consumer.start()  # no group: assigned every partition of the topic
        try:
            parts = await all_partitions(consumer, topic)
            await consumer.seek_to_beginning()
            ends = await consumer.end_offsets(parts)
            got: list[Consumed] = []
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(
                        Consumed(m.key, m.value or b"", m.partition, m.offset, m.timestamp)
                        for m in batch
                    )
            return sorted(got, key=lambda c: (c.partition, c.offset))
        finally:
            await consumer.stop()

    async def _end_offsets(self, topic: str) -> dict[int, int]:

        consumer = reader(self.bootstrap, topic)
        await consumer.start()
        try:
            parts = await all_partitions(consumer, topic)
            return {tp.partition: end for tp, end in (await consumer.end_offsets(parts)).items()}
        finally:
            await consumer.stop()

    async def _committed(self, topic: str, group_id: str, partitions: int) -> dict[int, int | None]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            return {
                p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)
            }
        finally:
            await consumer.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _started:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kafka_script() -> KafkaScript:
    if missing := [tool for tool in ("java", "mvn") if shutil.which(tool) is None]:
        skip_or_fail(f"{NEED_TOOLS}; missing: {', '.join(missing)}")
    return KafkaScript(TEST_STATE_DIR, TEST_PORT)


@pytest.fixture(scope="session")
def kafka_broker(kafka_script: KafkaScript) -> Iterator[str]:
    """A fresh broker for the session (its data from earlier runs deleted): its bootstrap."""
    began = time.monotonic()
    try:
        bootstrap = kafka_script.start(fresh=True)
    except KafkaScriptError as error:
        if SCRIPT_NEEDS_TOOLS in str(error):  # e.g. java older than 17
            skip_or_fail(f"{NEED_TOOLS}\n{error}")
        pytest.fail(str(error), pytrace=False)
    took = time.monotonic() - began
    _started.append(
        f"Kafka broker used by the tests: Apache Kafka {kafka_script.version()} at {bootstrap} "
        f"(scripts/kafka.sh, started in {took:.1f} s)"
    )
    try:
        yield bootstrap
    finally:
        kafka_script.stop()


@pytest.fixture
def kafka(kafka_broker: str) -> KafkaTestClient:
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        skip_or_fail(NEED_CLIENT)
    return KafkaTestClient(kafka_broker)
