"""The redis-server firewatch runs: real servers started, stopped, crashed and restarted."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from firewatch.linkage.server import (
    SOCKET_MAX_BYTES,
    RedisProcess,
    RedisServerError,
    async_twin,
    connect,
    embedded_status,
    stop_embedded,
)
from tests.redis_fixtures import RedisFactory

ROOT = Path(__file__).resolve().parents[2]
CLI = """
import sys, time
from pathlib import Path
from firewatch.linkage.server import connect
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # start together with the others
client = connect(None, Path(sys.argv[1]))
print(client.info("server")["process_id"], client.get("fw:test:from").decode())
client.close()
"""


def run_cli(data_dir: Path, count: int = 1) -> list[str]:
    """What `count` short processes connecting at the same moment print: pid and a value."""
    start_at = str(time.time() + 0.5)
    command = [sys.executable, "-c", CLI, str(data_dir), start_at]
    children = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(count)
    ]
    outputs = [child.communicate(timeout=30)[0] for child in children]
    assert [child.returncode for child in children] == [0] * count
    return outputs


def no_retry(server: RedisProcess) -> redis.Redis:
    """A client that fails at once when the server goes away (redis-py retries by default)."""
    return server.client(retry=Retry(NoBackoff(), 0))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def server_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


def test_a_server_starts_answers_ping_and_stops(redis_factory: RedisFactory) -> None:
    server = redis_factory()
    pid = server.pid
    assert pid is not None and server.running()
    with server.client() as client:
        assert client.ping()
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
    assert server.url == f"unix://{server.socket}"

    assert server.stop() is True
    assert not server.running() and server.pid is None and gone(pid)
    assert not server.socket.exists() and not server.pidfile.exists()
    assert server.stop() is False


def test_data_survives_shutdown_and_restart(redis_factory: RedisFactory) -> None:
    first = redis_factory()
    with first.client() as client:
        client.set("fw:test:order", b"dispatched")
        client.xadd("fw:test:log", {"kind": "created"})
    first.stop()

    again = redis_factory(first.data_dir)
    with again.client() as client:
        assert client.get("fw:test:order") == b"dispatched"
        assert client.xlen("fw:test:log") == 1


def fsync_settings(client: redis.Redis) -> dict[str, str]:
    """What the running server says about its persistence (CONFIG GET), not what was asked for."""
    out: dict[str, str] = {}
    for name in ("appendonly", "appendfsync", "save"):
        out.update({k: v for k, v in client.config_get(name).items()})
    return out


ALWAYS = {"appendonly": "yes", "appendfsync": "always", "save": ""}


def test_the_embedded_server_runs_append_only_and_fsyncs_every_write(
    embedded_redis_dir: Path,
) -> None:
    """The embedded default really runs with appendonly yes and appendfsync always: Redis then
    fsyncs the append-only file before it acknowledges a write. What that buys (a write
    acknowledged before a power loss is on disk after it) only a power loss can test: no test
    here cuts the power, so this reads back the setting instead."""
    with connect(None, embedded_redis_dir) as client:
        assert fsync_settings(client) == ALWAYS
    stop_embedded(embedded_redis_dir)
    with connect(None, embedded_redis_dir) as client:  # a restart rewrites redis.conf
        assert fsync_settings(client) == ALWAYS


def test_a_killed_server_restarts_from_its_append_only_file(redis_factory: RedisFactory) -> None:
    """SIGKILL, then a restart on the same folder reloads every write from the append-only file.

    What this does not test: SIGKILL ends the process but not the kernel, whose page cache still
    holds what Redis wrote and had not fsynced, so this passes with `appendfsync no` too. That an
    acknowledged write survives a power loss or a kernel crash needs the fsync, and only a power
    cut (or a VM killed without flushing its disk) would test it; the test above checks the
    server runs with appendfsync always."""
    server = redis_factory(appendfsync="always")
    with server.client() as client:
        assert fsync_settings(client) == ALWAYS
        for n in range(1000):
            client.incr("fw:test:count")
            client.xadd("fw:test:log", {"n": n})
    server.kill()  # SIGKILL: no SHUTDOWN, no final fsync
    assert not server.running()

    again = redis_factory(server.data_dir)
    with again.client() as client:
        assert client.get("fw:test:count") == b"1000"
        assert client.xlen("fw:test:log") == 1000
        assert client.info("persistence")["aof_enabled"] == 1
    assert not (server.data_dir / "dump.rdb").exists()  # no snapshot: it came from the AOF
    log = server.logfile.read_text()
    assert "DB loaded from append only file" in log.rpartition("Configuration loaded")[2]


def test_a_crash_mid_run_loses_no_acknowledged_write(redis_factory: RedisFactory) -> None:
    """Redis appends a write to its append-only file before it replies, so a crash of the
    process (SIGKILL while writing) loses no acknowledged write. As above, the page cache
    survives SIGKILL: this is about the process, not the disk."""
    server = redis_factory()
    acknowledged = 0

    def write_until_the_crash() -> None:
        nonlocal acknowledged
        with no_retry(server) as client:
            try:
                while True:
                    client.xadd("fw:test:log", {"n": acknowledged})
                    acknowledged += 1
            except redis.ConnectionError:
                pass

    writer = threading.Thread(target=write_until_the_crash)
    writer.start()
    while acknowledged < 300:
        time.sleep(0.01)
    server.kill()
    writer.join(timeout=10)

    with redis_factory(server.data_dir).client() as client:
        # the write in flight at the crash may or may not have landed
        assert acknowledged <= client.xlen("fw:test:log") <= acknowledged + 1


def test_starting_twice_on_one_folder_is_refused(redis_factory: RedisFactory) -> None:
    server = redis_factory()
    with pytest.raises(RedisServerError, match=r"already serves .* stop it first"):
        RedisProcess(server.data_dir).start()
    assert server.running()


def test_two_cli_processes_share_one_embedded_server(embedded_redis_dir: Path) -> None:
    client = connect(None, embedded_redis_dir)
    client.set("fw:test:from", b"first process")
    first = server_pid(client)
    client.close()

    assert run_cli(embedded_redis_dir) == [f"{first} first process\n"]
    assert embedded_status(embedded_redis_dir).startswith("running: redis-server ")
    assert f"pid {first}," in embedded_status(embedded_redis_dir)

    assert stop_embedded(embedded_redis_dir) is True
    assert gone(first)
    assert embedded_status(embedded_redis_dir).startswith("stopped; data in")
    assert stop_embedded(embedded_redis_dir) is False


def test_cli_processes_starting_at_once_start_one_server(embedded_redis_dir: Path) -> None:
    with connect(None, embedded_redis_dir) as client:  # so that the children have a value
        client.set("fw:test:from", b"parent")
    stop_embedded(embedded_redis_dir)
    outputs = run_cli(embedded_redis_dir, count=4)
    assert len(set(outputs)) == 1 and outputs[0].endswith(" parent\n")  # one server, one pid


def test_a_crashed_embedded_server_is_restarted_with_its_data(embedded_redis_dir: Path) -> None:
    with connect(None, embedded_redis_dir) as client:
        client.set("fw:test:order", b"acknowledged")
        crashed = server_pid(client)
    RedisProcess(embedded_redis_dir, daemonize=True).kill()
    server = RedisProcess(embedded_redis_dir)
    assert server.pidfile.exists() and server.socket.exists()  # left behind by the crash
    assert embedded_status(embedded_redis_dir).startswith("stopped by a crash")

    with connect(None, embedded_redis_dir) as client:
        assert server_pid(client) != crashed
        assert client.get("fw:test:order") == b"acknowledged"


def test_a_stale_pidfile_and_socket_do_not_block_a_start(embedded_redis_dir: Path) -> None:
    server = RedisProcess(embedded_redis_dir)
    server.prepare()
    server.pidfile.write_text(f"{dead_pid()}\n")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(server.socket))  # a socket file nobody listens on
    stale.close()

    with connect(None, embedded_redis_dir) as client:
        assert client.ping()
        assert int(server.pidfile.read_text()) == server_pid(client)


def test_a_long_data_dir_gets_a_short_private_socket(redis_factory: RedisFactory) -> None:
    deep = redis_factory.root / ("forest-district-" * 8) / "linkage"
    server = redis_factory(deep)
    assert len(os.fsencode(server.socket)) <= SOCKET_MAX_BYTES
    assert server.socket.parent.parent == Path("/tmp")
    assert stat.S_IMODE(server.socket.parent.stat().st_mode) == 0o700
    with server.client() as client:
        assert client.ping()


def test_connect_with_a_url_talks_to_that_server(
    redis_factory: RedisFactory, tmp_path: Path
) -> None:
    server = redis_factory()
    with server.client() as client:
        client.set("fw:test:where", b"given server")
    with connect(server.url, tmp_path / "unused") as client:
        assert client.get("fw:test:where") == b"given server"
    assert not (tmp_path / "unused").exists()  # no embedded server was started


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:6379/0", "invalid Redis URL http://localhost:6379/0: .*unix://"),
        ("redis://localhost:port/0", "invalid Redis URL redis://localhost:port/0"),
        ("unix:///nonexistent/redis.sock", "cannot reach Redis at unix:///nonexistent/redis.sock"),
        ("redis://:s3cret@127.0.0.1:1/0", r"cannot reach Redis at redis://:\*\*\*@127.0.0.1:1/0"),
    ],
)
def test_a_bad_url_gives_a_clear_error(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(RedisServerError, match=message) as caught:
        connect(url, tmp_path)
    assert "s3cret" not in str(caught.value)


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "redis"
    not_a_folder.write_text("")
    with pytest.raises(
        RedisServerError, match=rf"cannot use {re.escape(str(not_a_folder))} .* not a directory"
    ):
        RedisProcess(not_a_folder).start()
    with pytest.raises(RedisServerError, match="not a directory"):
        connect(None, not_a_folder)


def test_a_missing_binary_is_named(tmp_path: Path) -> None:
    with pytest.raises(RedisServerError, match="binary /nonexistent/redis-server is missing"):
        RedisProcess(tmp_path, Path("/nonexistent/redis-server")).start()


def test_a_server_that_exits_at_start_reports_its_log(redis_factory: RedisFactory) -> None:
    server = redis_factory(start=False)
    server.prepare()
    (server.data_dir / "appendonly.aof").write_bytes(b"this is not an append-only file\n")
    with pytest.raises(RedisServerError) as caught:
        server.start()
    message = str(caught.value)
    assert f"for data folder {server.data_dir} exited while starting" in message
    assert str(server.binary) in message and str(server.logfile) in message
    assert "append only file" in message.lower()  # Redis's own words, from the log
    assert not server.running() and server.pid is None


def test_the_session_client_starts_on_an_empty_database(redis_client: redis.Redis) -> None:
    assert redis_client.dbsize() == 0
    redis_client.set("fw:test:left", b"by this test")  # the next test's FLUSHALL removes it
    assert redis_client.get("fw:test:left") == b"by this test"


def test_an_async_twin_talks_to_the_same_server_on_a_bounded_pool(
    redis_client: redis.Redis, redis_session: RedisProcess
) -> None:
    """The API's asyncio client: same server and database; a burst of 200 commands waits for
    the pool's 4 connections instead of opening 200 (past a listen backlog, those fail)."""
    redis_client.set("twin-probe", b"sync")
    for url in (None, redis_session.url):
        client = redis_client if url is None else redis.Redis.from_url(url)
        twin = async_twin(client, max_connections=4)

        async def burst(twin: Any = twin) -> tuple[list[Any], int]:
            try:
                got = await asyncio.gather(*(twin.get("twin-probe") for _ in range(200)))
                return got, len(redis_client.client_list())  # the pool's connections still open
            finally:
                await twin.aclose()

        before = len(redis_client.client_list())
        got, during = asyncio.run(burst())
        assert got == [b"sync"] * 200
        assert 1 <= during - before <= 4
        # closed with the twin (the server sees a closed socket on its next event-loop turn)
        assert _clients_settle_at(redis_client, before)
        if client is not redis_client:
            client.close()


def _clients_settle_at(client: redis.Redis, count: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while len(client.client_list()) != count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
