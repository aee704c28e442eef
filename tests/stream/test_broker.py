"""The real broker of scripts/kafka.sh: Apache Kafka answers a consumer group, keeps each key on one
partition, keeps its data across a restart, and leaves no process behind when stopped."""

from __future__ import annotations

import os

from aiokafka.partitioner import murmur2

from tests.kafka_fixtures import KafkaScript, KafkaTestClient


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_thousand_keyed_messages_go_round_a_consumer_group(kafka: KafkaTestClient) -> None:
    topic = kafka.new_topic(partitions=4)
    sent = [(f"device-{i % 40:02d}".encode(), str(i).encode()) for i in range(1000)]

    placed = kafka.produce(topic, sent)

    partition_of: dict[bytes, int] = {}
    for (key, _), (partition, _) in zip(sent, placed, strict=True):
        assert partition_of.setdefault(key, partition) == partition, key
    # the Java clients' murmur2 placement: any producer puts a device on the same partition
    assert partition_of == {key: (murmur2(key) & 0x7FFFFFFF) % 4 for key in partition_of}
    assert set(partition_of.values()) == {0, 1, 2, 3}

    group = f"{topic}-readers"
    received = kafka.consume(topic, 1000, group_id=group)

    assert sorted(int(record.value) for record in received) == list(range(1000))
    assert all(record.key is not None for record in received)
    assert all(record.partition == partition_of[record.key or b""] for record in received)
    for key in partition_of:  # one device's messages come back in the order they were sent
        values = [int(record.value) for record in received if record.key == key]
        assert values == sorted(values), key
    per_partition = {p: sum(1 for part, _ in placed if part == p) for p in range(4)}
    assert kafka.committed(topic, group, partitions=4) == per_partition


def test_data_survives_a_restart_and_stop_leaves_no_java_behind(
    kafka: KafkaTestClient, kafka_script: KafkaScript, kafka_broker: str
) -> None:
    topic = kafka.new_topic(partitions=2)
    sent = [(b"sensor-%d" % (i % 5), b"reading-%d" % i) for i in range(100)]
    kafka.produce(topic, sent)
    running = kafka_script.status()
    assert running.returncode == 0, running.stderr
    assert running.stdout.startswith("running: ") and kafka_broker in running.stdout
    pid = kafka_script.pid()
    assert pid is not None and kafka_script.java_processes() == [pid]

    try:
        kafka_script.stop()

        stopped = kafka_script.status()
        assert (stopped.returncode, stopped.stdout.strip()) == (3, "not running")
        assert not alive(pid)
        assert kafka_script.java_processes() == []
    finally:
        assert kafka_script.start() == kafka_broker  # not --fresh: the same data folder

    restarted = kafka_script.pid()
    assert restarted is not None and restarted != pid
    assert kafka_script.start() == kafka_broker  # running already: same broker, no second JVM
    assert kafka_script.java_processes() == [restarted]
    received = kafka.consume(topic, 100)
    assert sorted((r.key, r.value) for r in received) == sorted(sent)
