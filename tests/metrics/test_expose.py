"""Getting metrics out: every name of the contract exported, a served registry, a snapshot."""

from __future__ import annotations

import re
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from firewatch.errors import FirewatchError
from firewatch.metrics import EXPORTED, StreamMetrics, exported_names, exported_series, serve

# the names the alert rules and the dashboard are built on (the metrics contract of issue #10)
CONTRACT = {
    "firewatch_engine_detections_total",
    "firewatch_engine_located_total",
    "firewatch_engine_late_detections_total",
    "firewatch_ingest_rejects_total",
    "firewatch_engine_batch_duration_seconds",
    "firewatch_engine_event_latency_seconds",
    "firewatch_engine_incident_events_total",
    "firewatch_engine_open_incidents",
    "firewatch_kafka_consumer_lag_messages",
    "firewatch_kafka_errors_total",
    "firewatch_stream_rebalances_total",
    "firewatch_stream_commit_latency_seconds",
    "firewatch_linkage_orders",
    "firewatch_linkage_warnings_total",
    "firewatch_linkage_responses_total",
    "firewatch_linkage_closures_total",
    "firewatch_linkage_escalations_total",
    "firewatch_linkage_response_ratio",
    "firewatch_linkage_closure_ratio",
    "firewatch_linkage_time_to_ack_seconds",
    "firewatch_linkage_time_to_scene_seconds",
    "firewatch_linkage_time_to_close_seconds",
    "firewatch_linkage_detection_to_dispatch_seconds",
    "firewatch_linkage_overdue_orders",
    "firewatch_redis_errors_total",
    "firewatch_redis_retries_total",
    "firewatch_api_requests_total",
    "firewatch_api_request_duration_seconds",
    "firewatch_api_stream_subscribers",
}
# beyond the contract: the dispatcher's Redis reads; device health (issue #12)
ADDED = {
    "firewatch_linkage_read_ok",
    "firewatch_engine_device_events_total",
    "firewatch_engine_devices_down",
    "firewatch_engine_cells_blind",
}
README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_name_of_the_contract_is_exported_and_nothing_unnamed() -> None:
    assert exported_names() == EXPORTED == CONTRACT | ADDED
    series = exported_series()
    assert {
        "firewatch_engine_batch_duration_seconds_bucket",
        "firewatch_engine_batch_duration_seconds_sum",
        "firewatch_linkage_time_to_ack_seconds_bucket",
        "firewatch_linkage_time_to_ack_seconds_count",
        "firewatch_engine_detections_total",
        "firewatch_linkage_orders",
    } <= series
    assert "firewatch_linkage_time_to_ack_seconds_sum" not in series  # the bins keep no sum
    assert all(n.startswith("firewatch_") for n in series)


def test_the_readme_lists_every_metric_and_only_those() -> None:
    text = README.read_text()
    section = text[text.index("\n## Metrics\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `(firewatch_[a-z_]+)` \|", section, flags=re.MULTILINE)
    assert len(rows) == len(set(rows))
    assert set(rows) == EXPORTED


def test_a_process_serves_its_registry_on_a_port_of_its_own() -> None:
    registry = CollectorRegistry()
    StreamMetrics(registry).set_lag("firewatch.detections", {0: 12, 1: 0})
    server = serve(registry, "127.0.0.1", 0, "test")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        line = 'firewatch_kafka_consumer_lag_messages{partition="0",topic="firewatch.detections"}'
        assert f"{line} 12.0" in text.splitlines()
        assert "firewatch_kafka_errors_total" in text
    finally:
        server.close()


def test_a_port_in_use_is_an_error_that_names_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FirewatchError, match=f"dispatcher: metrics cannot listen on .*:{port}"):
            serve(CollectorRegistry(), "127.0.0.1", port, "dispatcher")


def test_lag_of_partitions_moved_away_is_dropped() -> None:
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)
    metrics.set_lag("t", {0: 5, 1: 7})
    metrics.set_lag("t", {1: 3})  # partition 0 went to another worker
    lag = "firewatch_kafka_consumer_lag_messages"
    assert registry.get_sample_value(lag, {"topic": "t", "partition": "0"}) is None
    assert registry.get_sample_value(lag, {"topic": "t", "partition": "1"}) == 3
