"""Notifications at least once: acknowledged only after they are handed over, else read again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from firewatch.cli import main
from firewatch.linkage import inbox, keys
from firewatch.linkage.server import RedisProcess
from firewatch.linkage.service import Linkage

from .conftest import event, oid

ROOT = Path(__file__).resolve().parents[2]
TEAM = "team:team-A"
READER = """
import os, signal, sys
import redis
from firewatch.linkage.inbox import read
notes = read(redis.Redis(unix_socket_path=sys.argv[1]), sys.argv[2], sys.argv[3])
print(" ".join(n.id for n in notes), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies after reading, before handing them over
"""


def _pending(client: redis.Redis) -> dict[str, int]:
    """Pending (read, unacknowledged) entries per consumer that has any."""
    info = client.xpending(keys.notify(TEAM), keys.NOTIFY_GROUP)
    return {c["name"].decode(): c["pending"] for c in info["consumers"]}


def _nobody_gets_them(linkage: Linkage) -> None:
    for consumer in ("phone-1", "phone-2", "cli"):
        assert linkage.store.inbox(TEAM, consumer, min_idle=timedelta(0)) == []


def test_a_reader_killed_before_handing_over_reads_them_again_under_its_name(
    linkage: Linkage, redis_session: RedisProcess, redis_client: redis.Redis
) -> None:
    linkage.consume([event(), event(n=2)])
    killed = subprocess.run(
        [sys.executable, "-c", READER, str(redis_session.socket), TEAM, "phone-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    read = killed.stdout.split()
    assert len(read) == 2 and _pending(redis_client) == {"phone-1": 2}
    # another phone, at once: the killed reader's notifications are not taken yet (min_idle)
    assert linkage.store.inbox(TEAM, "phone-2") == []
    again = linkage.store.inbox(TEAM, "phone-1")  # the reader, started again under its name
    assert [n.id for n in again] == read
    assert [n.fields["order"] for n in again] == [oid(1), oid(2)]
    assert linkage.store.ack_inbox(TEAM, read) == 2
    _nobody_gets_them(linkage)


def test_a_reader_that_never_comes_back_is_taken_over_after_min_idle(
    linkage: Linkage, redis_session: RedisProcess, redis_client: redis.Redis
) -> None:
    linkage.consume([event(), event(n=2)])
    lost = redis_session.client()
    read = inbox.read(lost, TEAM, "phone-1")  # read, never handed over, never acknowledged
    lost.close()
    linkage.consume([event(n=3)])
    fresh = linkage.store.inbox(TEAM, "phone-2")  # only the new one: phone-1's are not idle yet
    assert [n.fields["order"] for n in fresh] == [oid(3)]
    linkage.store.ack_inbox(TEAM, [n.id for n in fresh])
    time.sleep(0.3)
    taken = linkage.store.inbox(TEAM, "phone-2", min_idle=timedelta(seconds=0.2))
    assert taken == read  # the same entries: ids and fields
    assert _pending(redis_client) == {"phone-2": 2}  # claimed: phone-1 has none left
    assert linkage.store.ack_inbox(TEAM, [n.id for n in taken]) == 2
    _nobody_gets_them(linkage)


def test_the_cli_acknowledges_only_what_it_printed(
    tmp_path: Path,
    redis_session: RedisProcess,
    redis_client: redis.Redis,
    linkage: Linkage,
    capsys: pytest.CaptureFixture[str],
) -> None:
    linkage.consume([event(), event(n=2)])
    url = ["--redis-url", redis_session.url, "--rules", str(ROOT / "rules")]
    command = [sys.executable, "-m", "firewatch", "dispatch", "inbox", TEAM, *url]
    reader = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    reader.stdout.close()  # whoever reads its output is gone: printing fails
    _, err = reader.communicate(timeout=60)
    assert reader.returncode != 0 and "BrokenPipeError" in err
    assert _pending(redis_client) == {"cli": 2}  # read, not acknowledged

    assert main(["dispatch", "inbox", TEAM, *url]) == 0  # `cli` again: gets them at once
    printed = capsys.readouterr().out.splitlines()
    stream = [entry_id.decode() for entry_id, _ in redis_client.xrange(keys.notify(TEAM))]
    assert [line.split('"id": "')[1].split('"')[0] for line in printed] == stream
    assert _pending(redis_client) == {}  # printed, then acknowledged
    _nobody_gets_them(linkage)


def test_own_pending_notifications_come_first_and_count_is_kept(linkage: Linkage) -> None:
    linkage.consume([event(), event(n=2)])
    (first,) = linkage.store.inbox(TEAM, "phone-1", count=1)
    assert first.fields["order"] == oid(1)
    linkage.consume([event(n=3)])
    got = linkage.store.inbox(TEAM, "phone-1", count=2)  # the pending one, then new ones
    assert [n.fields["order"] for n in got] == [oid(1), oid(2)]
    with pytest.raises(ValueError, match="team:team-A: count must be at least 1"):
        linkage.store.inbox(TEAM, "phone-1", count=0)


def test_a_pending_notification_trimmed_from_its_stream_is_dropped(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(), event(n=2)])
    first, second = linkage.store.inbox(TEAM, "phone-1")
    redis_client.xdel(keys.notify(TEAM), first.id)  # as MAXLEN trimming would
    assert linkage.store.inbox(TEAM, "phone-1") == [second]
    assert _pending(redis_client) == {"phone-1": 1}  # the trimmed one was acknowledged
