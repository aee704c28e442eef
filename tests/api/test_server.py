"""`firewatch api` serves the app on uvicorn, with settings from the environment and flags."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import redis

from firewatch.api.tokens import TokenStore
from firewatch.linkage.server import RedisProcess

from .test_health import closed_port

ROOT = Path(__file__).resolve().parents[2]


def test_firewatch_api_runs_uvicorn_on_the_configured_redis(
    tmp_path: Path, grid_file: Path, redis_session: RedisProcess, redis_client: redis.Redis
) -> None:
    port = closed_port()
    env = {
        **os.environ,
        "FIREWATCH_GRID": str(grid_file),
        "FIREWATCH_CACHE_DIR": str(tmp_path / "cache"),
        "FIREWATCH_REDIS_URL": redis_session.url,
    }
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "firewatch", "api", "--port", str(port), "--rules", "rules"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert httpx.get(f"{base}/readyz").status_code == 200
        token = TokenStore(redis_client).add("dashboard", "wall", datetime.now(UTC))
        answer = httpx.get(
            f"{base}/v1/dispatches",
            params={"team": "team-0-0"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200 and answer.json() == {"team": "team-0-0", "orders": []}
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    text = log.read_text()
    assert "Uvicorn running on" in text and token not in text
    assert '"GET /v1/dispatches?team=team-0-0 HTTP/1.1" 200' in text
