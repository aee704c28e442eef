"""Kafka metrics of the long-running stream processes (`firewatch worker`, `firewatch dispatcher`):
consumer lag per topic and partition, Kafka errors, rebalances, commit latency. firewatch/stream
updates them (it is the only package that talks to Kafka); Faust's own events come through a
Faust sensor there (stream/sensor.py)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Kafka operations that can fail, as the `operation` label says them
OPERATIONS = ("send", "commit", "offsets", "lag", "publish_masks")


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "firewatch_kafka_consumer_lag_messages",
            "Messages on the broker that this process's consumer has not read yet (the "
            "partition's end offset minus the consumer's position), per assigned partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.errors = Counter(
            "firewatch_kafka_errors_total",
            "Kafka operations that failed (each is retried or read again), by operation",
            ["operation"],
            registry=registry,
        )
        self.rebalances = Counter(
            "firewatch_stream_rebalances_total",
            "Partition assignments received by this process's consumer groups (a rebalance)",
            registry=registry,
        )
        self.commit_latency = Histogram(
            "firewatch_stream_commit_latency_seconds",
            "Seconds an offset commit takes, from the request to the broker's answer",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        for operation in OPERATIONS:
            self.errors.labels(operation)
        self._partitions: dict[str, set[int]] = {}

    def error(self, operation: str) -> None:
        self.errors.labels(operation).inc()

    def set_lag(self, topic: str, lags: Mapping[int, int]) -> None:
        """The lag of every partition of `topic` this process reads now; partitions it no
        longer reads (a rebalance moved them) are dropped, not left at their last value."""
        for gone in self._partitions.get(topic, set()) - set(lags):
            self.lag.remove(topic, str(gone))
        for partition, lag in lags.items():
            self.lag.labels(topic, str(partition)).set(max(lag, 0))
        self._partitions[topic] = set(lags)
