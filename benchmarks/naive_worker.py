"""The baseline of bench_stream.py: a naive Faust agent that awaits per event and calls the engine
one detection at a time (what the stream worker must beat). Not part of firewatch.

    python benchmarks/naive_worker.py worker -l warn    (configured like `firewatch worker`)
"""

from __future__ import annotations

import os
from typing import Any

import faust

from firewatch.ingest.validate import validate_lines
from firewatch.model import event_key
from firewatch.runtime import open_engine
from firewatch.settings import Settings

settings = Settings.from_env(os.environ)
engine = open_engine(settings)
app = faust.App(
    settings.kafka_group,
    broker=f"kafka://{settings.kafka_bootstrap}",
    web_enabled=False,
    topic_partitions=settings.kafka_partitions,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
    datadir=str(settings.state_dir),
)
detections = app.topic(settings.topic_detections, key_type=bytes, value_type=bytes)
incidents = app.topic(settings.topic_incidents, key_type=bytes, value_type=bytes)


@app.agent(detections)
async def naive(stream: Any) -> None:
    async for value in stream:
        valid, _, _ = validate_lines([value], settings.topic_detections, first_line=None)
        for event in engine.process(valid):
            await incidents.send(key=event_key(event).encode(), value=event.model_dump_json())


if __name__ == "__main__":
    app.main()
