"""What the stream processes tell their metrics (firewatch/metrics/stream.py): consumer lag per
topic and partition, and Faust's rebalances, commits and send errors (a Faust sensor)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import faust

from firewatch.metrics.stream import StreamMetrics

log = logging.getLogger(__name__)


async def positions(consumer: Any) -> dict[Any, tuple[int, int]]:
    """An aiokafka consumer's assigned partitions: (its position, the end offset asked afresh of
    the broker: ListOffsets, never an end a fetch reported earlier). A partition revoked while
    this asks is left out."""
    from aiokafka.errors import IllegalStateError

    assigned = list(consumer.assignment())
    ends = await consumer.end_offsets(assigned) if assigned else {}
    out = {}
    for tp, end in ends.items():
        try:
            out[tp] = (await consumer.position(tp), end)
        except IllegalStateError:  # revoked meanwhile
            continue
    return out


def record_lag(metrics: StreamMetrics, topic: str, where: dict[Any, tuple[int, int]]) -> None:
    """Lag of `topic`'s partitions from `positions`."""
    metrics.set_lag(
        topic, {tp.partition: end - pos for tp, (pos, end) in where.items() if tp.topic == topic}
    )


async def faust_lag(app: faust.App, topic: str, metrics: StreamMetrics) -> None:
    """The lag of a Faust app's consumer on `topic` (end offsets asked of the broker, minus its
    positions); a failure is counted and said, and the last values stay."""
    from aiokafka.errors import KafkaError

    consumer: Any = app.consumer
    assigned = [tp for tp in consumer.assignment() if tp.topic == topic]
    try:
        ends = await consumer.highwaters(*assigned) if assigned else {}
        lags = {}
        for tp, end in ends.items():
            pos = await consumer.position(tp)
            if pos is not None and end is not None:
                lags[tp.partition] = end - pos
    except KafkaError as exc:
        metrics.error("lag")
        log.warning("%s: consumer lag not known (%r)", topic, exc)
        return
    metrics.set_lag(topic, lags)


class StreamSensor(faust.Sensor):
    """Faust's own events as firewatch metrics: rebalances, commit latency (every commit Faust
    makes, at `broker_commit_interval`), and messages Faust could not send."""

    def __init__(
        self, metrics: StreamMetrics, seconds: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__()
        self.metrics = metrics
        self.seconds = seconds

    def on_commit_initiated(self, consumer: Any) -> Any:
        return self.seconds()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        self.metrics.commit_latency.observe(self.seconds() - float(state))

    def on_rebalance_start(self, app: Any) -> dict[Any, Any]:
        self.metrics.rebalances.inc()
        return super().on_rebalance_start(app)

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self.metrics.error("send")
