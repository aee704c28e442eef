"""A real Prometheus server scrapes a running `firewatch api`, `firewatch worker` and `firewatch
dispatcher` (on the test broker and a redis-server of the test's own), and PromQL over its HTTP
API gives the response rate of the orders they made: four fires posted to the API, three orders
acknowledged through it, 75 %.

Prometheus is Debian's (`scripts/prometheus.sh` installs it when missing, as root: `make test`
does); without it the test skips saying so, and with CI=true it fails.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firewatch.api.tokens import TokenStore
from firewatch.linkage import keys
from firewatch.linkage.server import RedisProcess
from firewatch.stream.topics import Topics

from ..services import skip_or_fail
from .conftest import Processes

NEED_PROMETHEUS = (
    "the Prometheus test needs Debian's prometheus on PATH: `bash scripts/prometheus.sh` as root "
    "(make test runs it), or apt-get install --no-install-recommends prometheus"
)
# four cells of the demo grid, 8 km and more apart: four fires, four incidents, four orders
FIRES = [(29.32493, 118.87746), (29.29313, 118.9578), (29.27528, 118.80668), (29.24597, 118.88575)]
JOBS = ("firewatch-api", "firewatch-worker", "firewatch-dispatcher")


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _http(url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def _until(check: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # not listening yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})\n{logs()}")


class Prometheus:
    """Debian's prometheus on a free port, a generated config and a storage folder of its own."""

    def __init__(self, binary: str, folder: Path, targets: dict[str, int]) -> None:
        self.port = _free_ports(1)[0]
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()
            ],
        }
        folder.mkdir()
        (folder / "prometheus.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (/api/v1/query)."""
        q = urllib.parse.urlencode({"query": promql})
        answer = _http(f"http://127.0.0.1:{self.port}/api/v1/query?{q}")
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The single value of a query (None: no sample yet)."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        skip_or_fail(NEED_PROMETHEUS)
    return binary


def test_prometheus_scrapes_every_process_and_gives_the_response_rate(
    prometheus_binary: str,
    tmp_path: Path,
    topics: Topics,
    procs: Processes,
    redis_server: RedisProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    began = time.monotonic()
    api, worker, dispatcher = _free_ports(3)
    monkeypatch.setenv("FIREWATCH_API_INGEST", "kafka")  # the API posts to the workers' topic
    procs.worker("--metrics-port", str(worker))
    procs.dispatcher("--metrics-port", str(dispatcher))
    procs.start("api", "--port", str(api), "--loglevel", "warning")
    targets = dict(zip(JOBS, (api, worker, dispatcher), strict=True))
    prometheus = Prometheus(prometheus_binary, tmp_path / "prometheus", targets)

    def logs() -> str:
        return procs.log_tail() + "\n--- prometheus\n" + prometheus.log.read_text()[-2000:]

    try:
        _run(prometheus, api, redis_server, topics, logs)
    finally:
        prometheus.stop()
    print(f"prometheus test: {time.monotonic() - began:.1f} s")


def _run(
    prometheus: Prometheus,
    api: int,
    redis_server: RedisProcess,
    topics: Topics,
    logs: Callable[[], str],
) -> None:
    client = redis_server.client()
    try:
        store = TokenStore(client)
        now = datetime.now(UTC)
        ingest = {"Authorization": f"Bearer {store.add('ingest', 'gateway', now)}"}
        admin = {"Authorization": f"Bearer {store.add('admin', 'alice', now)}"}
        base = f"http://127.0.0.1:{api}"
        _until(lambda: _http(f"{base}/readyz")["ready"], 30, "the API ready", logs)
        seen = (now - timedelta(minutes=30)).isoformat()
        fires = [
            {
                "id": f"flame-{i}",
                "source": "camera",
                "device_id": f"tower-{i}",
                "observed_at": seen,
                "lat": lat,
                "lon": lon,
                "confidence": 0.95,
                "label": "flame",
            }
            for i, (lat, lon) in enumerate(FIRES)
        ]
        posted = _http(f"{base}/v1/detections", fires, ingest)
        assert posted["accepted"] == 4, posted

        def orders() -> list[str]:
            ids = [m.decode() for m in client.zrange(keys.ORDERS_BY_CREATED, 0, -1)]
            return ids if len(ids) == 4 else []

        # the worker opens them once its input is idle; the dispatcher makes the orders
        ids = _until(orders, 40, "four orders in Redis", logs)
        for oid in ids[:3]:
            answer = _http(f"{base}/v1/dispatches/{oid}/ack", {}, admin)
            assert answer["changed"] is True, answer
    finally:
        client.close()

    for job in JOBS:
        _until(lambda job=job: prometheus.value(f'up{{job="{job}"}}') == 1, 20, f"{job} up", logs)
    # the analyst's query: of the warnings issued, the share acknowledged
    rate = "sum(firewatch_linkage_responses_total) / sum(firewatch_linkage_warnings_total)"
    _until(lambda: prometheus.value(rate) == 0.75, 20, "response rate 0.75", logs)
    overall = 'firewatch_linkage_response_ratio{job="firewatch-dispatcher",district=""}'
    assert prometheus.value(overall) == 0.75
    assert prometheus.value('firewatch_linkage_orders{state="acknowledged"}') == 3
    assert prometheus.value('firewatch_linkage_orders{state="pending"}') == 1
    # the worker's engine saw four strong fire signals, the API answered three acks (each
    # scraped within a second of the dispatcher's figures)
    strong = 'sum(firewatch_engine_detections_total{job="firewatch-worker",outcome="incident"})'
    _until(lambda: prometheus.value(strong) == 4, 5, "four strong signals", logs)
    acks = (
        'firewatch_api_requests_total{job="firewatch-api",'
        'route="/v1/dispatches/{order_id}/ack",method="POST",status="200"}'
    )
    _until(lambda: prometheus.value(acks) == 3, 5, "three acks answered", logs)
    # each process's consumer groups were assigned partitions and committed offsets
    for job in ("firewatch-worker", "firewatch-dispatcher"):
        assert (prometheus.value(f'firewatch_stream_rebalances_total{{job="{job}"}}') or 0) >= 1
        commits = f'firewatch_stream_commit_latency_seconds_count{{job="{job}"}}'
        assert (prometheus.value(commits) or 0) >= 1, job
    # consumer lag per topic and partition: nothing left to read of the detections (the worker)
    # and the incidents (the dispatcher); the located topic gets progress markers all along
    # (a scrape may fall between a dispatcher's read and its commit: wait for a later one)
    wanted = {(topics.detections, 0.0), (topics.incidents, 0.0)}

    def read_out() -> bool:
        done = {
            (r["metric"]["topic"], float(r["value"][1]))
            for r in prometheus.query("firewatch_kafka_consumer_lag_messages")
            if r["metric"]["topic"] in (topics.detections, topics.incidents)
        }
        return done == wanted

    _until(read_out, 15, "no lag left on the detections and incidents topics", logs)
    lag = prometheus.query("firewatch_kafka_consumer_lag_messages")
    assert {r["metric"]["job"] for r in lag} == {"firewatch-worker", "firewatch-dispatcher"}
