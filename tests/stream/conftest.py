"""Fresh topic names and settings per test, through the environment as an operator sets them;
firewatch's long-running commands as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from firewatch.linkage.server import RedisProcess
from firewatch.settings import Settings
from firewatch.stream.stages import unpack_state
from firewatch.stream.topics import Topics
from firewatch.stream.watchdog import EXIT_STALLED

from ..kafka_fixtures import KafkaTestClient
from ..redis_fixtures import RedisFactory


@pytest.fixture
def topics(monkeypatch: pytest.MonkeyPatch, kafka: KafkaTestClient, tmp_path: Path) -> Topics:
    suffix = kafka.new_topic(1, "probe").removeprefix("probe-")
    for kind in ("detections", "located", "incidents", "rejects", "masks"):
        monkeypatch.setenv(f"FIREWATCH_TOPIC_{kind.upper()}", f"{kind}-{suffix}")
    monkeypatch.setenv("FIREWATCH_KAFKA_BOOTSTRAP", kafka.bootstrap)
    monkeypatch.setenv("FIREWATCH_KAFKA_PARTITIONS", "3")
    monkeypatch.setenv("FIREWATCH_KAFKA_GROUP", f"firewatch-{suffix}")
    monkeypatch.setenv("FIREWATCH_STATE_DIR", str(tmp_path / "faust"))
    monkeypatch.setenv("FIREWATCH_CACHE_DIR", str(tmp_path / "cache"))
    return Topics.of(Settings.from_env(os.environ))


ROOT = Path(__file__).resolve().parents[2]


class Processes:
    """`firewatch ...` processes (worker, dispatcher) with their logs; all stopped at teardown."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, program: Path | None = None) -> subprocess.Popen[bytes]:
        """`python -m firewatch ARGS`, or `python PROGRAM ARGS` (a fault-injecting wrapper)."""
        log = self.logs / f"{args[0]}{len(self.processes)}.log"
        run = [str(program)] if program is not None else ["-m", "firewatch"]
        with log.open("wb") as f:
            process = subprocess.Popen(
                [sys.executable, *run, *args],
                cwd=ROOT,
                env=dict(os.environ),
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        process.program = program  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def supervise(self) -> list[str]:
        """As a supervisor would: start again each process that exited with 75 (a worker whose
        table recovery stalled, firewatch/stream/watchdog.py); says what it restarted."""
        done = []
        for process in list(self.processes):
            if process.poll() == EXIT_STALLED and not getattr(process, "restarted", False):
                process.restarted = True  # type: ignore[attr-defined]
                program = getattr(process, "program", None)
                skip = 3 if program is None else 2  # python -m firewatch ... / python PROGRAM ...
                args = [str(a) for a in process.args[skip:]]
                self.start(*args, program=program)
                done.append(" ".join(args[:1]) + f" (pid {process.pid}) exited 75: started again")
        return done

    def worker(self, *options: str) -> subprocess.Popen[bytes]:
        return self.start("worker", "--idle-release", "2", *options)

    def dispatcher(self, *options: str) -> subprocess.Popen[bytes]:
        return self.start("dispatcher", "--loglevel", "info", *options)

    def log_text(self, name: str) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.logs.glob(f"{name}*.log"))
        )

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-2000:]
            for p in sorted(self.logs.glob("*.log"))
        )

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def redis_server(redis_factory: RedisFactory, monkeypatch: pytest.MonkeyPatch) -> RedisProcess:
    """A redis-server of the test's own (append-only, fsync always), as FIREWATCH_REDIS_URL."""
    process = redis_factory()
    monkeypatch.setenv("FIREWATCH_REDIS_URL", process.url)
    return process


@pytest.fixture
def procs(topics: Topics, tmp_path: Path) -> Iterator[Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    started = Processes(logs)
    try:
        yield started
    finally:
        started.stop_all()


def saved_states(kafka: KafkaTestClient) -> list[dict[str, Any]]:
    """The latest engine state of every region in the worker's table, read from its changelog
    topic (`<group>-engine-state-changelog`): what a successor would resume from."""
    topic = os.environ["FIREWATCH_KAFKA_GROUP"] + "-engine-state-changelog"
    latest = {m.key: m.value for m in kafka.read_all(topic) if m.key and m.value}
    return [orjson.loads(unpack_state(blob)[1]) for blob in latest.values()]
