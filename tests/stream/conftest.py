"""Fresh topic names and settings per test, through the environment as an operator sets them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firewatch.settings import Settings
from firewatch.stream.topics import Topics

from ..kafka_fixtures import KafkaTestClient


@pytest.fixture
def topics(monkeypatch: pytest.MonkeyPatch, kafka: KafkaTestClient, tmp_path: Path) -> Topics:
    suffix = kafka.new_topic(1, "probe").removeprefix("probe-")
    for kind in ("detections", "located", "incidents", "rejects"):
        monkeypatch.setenv(f"FIREWATCH_TOPIC_{kind.upper()}", f"{kind}-{suffix}")
    monkeypatch.setenv("FIREWATCH_KAFKA_BOOTSTRAP", kafka.bootstrap)
    monkeypatch.setenv("FIREWATCH_KAFKA_PARTITIONS", "3")
    monkeypatch.setenv("FIREWATCH_KAFKA_GROUP", f"firewatch-{suffix}")
    monkeypatch.setenv("FIREWATCH_STATE_DIR", str(tmp_path / "faust"))
    monkeypatch.setenv("FIREWATCH_CACHE_DIR", str(tmp_path / "cache"))
    return Topics.of(Settings.from_env(os.environ))
