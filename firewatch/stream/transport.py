"""Faust's aiokafka transport, with the incidents stage's consumer asking the broker to hold an
empty fetch for FETCH_MAX_WAIT_MS instead of Faust's 1,500 ms.

Why: aiokafka keeps one fetch request in flight per broker, and leaves out of it every partition
whose fetched records the application has not taken yet. Faust's consumer is also assigned
partitions it never reads at run time (the table's changelog, Faust's leader topic). When the
incidents stage is still busy with what it was given 100 ms after a fetch (a checkpoint, a large
batch), the next fetch goes out for those idle partitions alone, and the broker holds it for the
whole fetch wait: the located messages that arrive meanwhile are fetched only after it. Measured
on bench_stream's latency phase (2026-12-05): in about one run in three this settled into a cycle
of a 1.5 s fetch and a burst, every incident event about a second late (p50 1,044 ms, p99
2,019 ms from the detection's append to the event's); a fetch that has data returns at once
whatever the wait, so a short wait costs only a few more fetch requests an idle worker makes.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as driver

FETCH_MAX_WAIT_MS = 50  # the most a fetch of partitions without new records waits at the broker


class ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by the consumer's Fetcher when it starts; Faust passes no setting for it
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    Consumer = Consumer
