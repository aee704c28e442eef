"""The field teams' command line, against a real Redis and the embedded default."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from firewatch.cli import main
from firewatch.linkage.maintenance import maintenance_id
from firewatch.linkage.server import RedisProcess
from firewatch.model import Source

from .conftest import event, oid
from .test_maintenance import device

ROOT = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_team_works_its_orders_from_the_command_line(
    tmp_path: Path,
    redis_client: redis.Redis,
    redis_session: RedisProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = tmp_path / "events.jsonl"
    # the first detection, 4.5 min before `consume` (which runs on the system clock)
    seen = datetime.fromtimestamp(round(time.time() - 270, 3), UTC)
    events.write_text(
        "\n".join(e.model_dump_json() for e in [event(n=1, first_seen=seen), event(n=2)])
        + "\nnot json\n"
    )
    url = ["--redis-url", redis_session.url, "--rules", str(ROOT / "rules")]
    code, out, _ = _run(capsys, "dispatch", "consume", str(events), *url)
    assert code == 0 and "2 orders created" in out
    code, out, _ = _run(capsys, "dispatch", "list", "--team", "team-A", *url)
    assert oid(1) in out and oid(2) in out and "2 open orders for team-A" in out
    assert _run(capsys, "dispatch", "ack", oid(1), *url)[0] == 0
    code, out, _ = _run(capsys, "dispatch", "ack", oid(1), *url)
    assert code == 0 and "nothing changed" in out
    assert _run(capsys, "dispatch", "arrive", oid(1), *url)[0] == 0
    args = ["dispatch", "close", oid(1), "--outcome", "false_alarm", "--cause", "known_heat_source"]
    assert _run(capsys, *args, "--note", "kiln", *url)[0] == 0
    code, _, err = _run(capsys, "dispatch", "ack", oid(1), *url)
    assert code == 2 and f"order {oid(1)} (closed)" in err
    code, out, _ = _run(capsys, "dispatch", "show", oid(1), "--json", *url)
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["state"] == "closed" and lines[0]["mask"] == f"false-alarm-{oid(1)}"
    assert datetime.fromisoformat(lines[0]["detected_at"]) == seen
    assert [e["kind"] for e in lines[1:]][-2:] == ["close", "mask"]
    code, out, _ = _run(capsys, "dispatch", "show", oid(1), *url)
    detected, mask_line = out.splitlines()[1:3]
    dispatched = datetime.fromisoformat(lines[0]["created_at"])  # the wall clock of `consume`
    delay = int((dispatched - seen).total_seconds())
    assert 270 <= delay < 300
    assert detected == (
        f"  first detection observed {seen:%Y-%m-%d %H:%M:%S}Z, dispatched "
        f"{delay // 3600}h{delay % 3600 // 60:02d}m{delay % 60:02d}s later"
    )
    assert mask_line == f"  suppression mask false-alarm-{oid(1)} (made by its false-alarm closure)"
    code, out, _ = _run(capsys, "masks", "list", *url)
    (mask,) = [json.loads(line) for line in out.splitlines()]
    assert mask["reason"] == "known_heat_source"
    assert _run(capsys, "masks", "remove", mask["name"], *url)[0] == 0
    assert _run(capsys, "masks", "remove", mask["name"], *url)[0] == 2
    code, out, _ = _run(capsys, "report", "--json", "--by", "team", *url)
    rows = {r["scope"]: r for r in json.loads(out)["rows"]}
    assert rows["all"]["issued"] == 2 and rows["all"]["acknowledged"] == 1
    assert rows["team:team-A"]["closed"] == 1
    code, out, _ = _run(capsys, "dispatch", "inbox", "team:team-A", *url)
    told = [json.loads(line) for line in out.splitlines()]
    assert [m["order"] for m in told] == [oid(1), oid(2)]
    stream = [entry_id.decode() for entry_id, _ in redis_client.xrange("fw:notify:team:team-A")]
    assert [m["id"] for m in told] == stream
    code, out, _ = _run(capsys, "dispatch", "inbox", "team:team-A", *url)
    assert (code, out) == (0, "")  # printed, then acknowledged: not handed out again
    code, _, err = _run(capsys, "dispatch", "inbox", "team:team-A", "--min-idle", "-1", *url)
    assert code == 2 and "--min-idle must be >= 0, not -1" in err
    code, _, err = _run(capsys, "dispatch", "show", "ord-missing", *url)
    assert code == 2 and "ord-missing" in err


def test_the_embedded_redis_is_started_reused_and_stopped(
    tmp_path: Path, embedded_redis_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(event(n=1).model_dump_json() + "\n")
    where = ["--redis-dir", str(embedded_redis_dir), "--rules", str(ROOT / "rules")]
    assert _run(capsys, "dispatch", "consume", str(events), *where)[0] == 0
    code, out, _ = _run(capsys, "dispatch", "list", "--team", "team-A", *where)
    assert oid(1) in out
    assert "running" in _run(capsys, "redis", "status", *where)[1]
    assert _run(capsys, "redis", "stop", *where)[1].startswith("stopped")
    code, out, _ = _run(capsys, "report", "--by", "", *where)  # starts it again: data kept
    assert code == 0 and out.splitlines()[2].split()[:2] == ["all", "1"]


def test_transitions_on_the_command_line_record_who_did_them(
    tmp_path: Path,
    redis_client: redis.Redis,
    redis_session: RedisProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(event(n=1).model_dump_json() + "\n")
    url = ["--redis-url", redis_session.url, "--rules", str(ROOT / "rules")]
    assert _run(capsys, "dispatch", "consume", str(events), *url)[0] == 0
    code, out, _ = _run(capsys, "dispatch", "ack", oid(1), *url)
    assert code == 0 and out.startswith(f"{oid(1)}  acknowledged ") and out.count("\n") == 1
    args = ["dispatch", "close", oid(1), "--outcome", "extinguished", "--note", "out"]
    assert _run(capsys, *args, "--by", "team:team-A", *url)[0] == 0
    code, out, _ = _run(capsys, "dispatch", "show", oid(1), "--json", *url)
    log = [json.loads(line) for line in out.splitlines()[1:]]
    assert [(e["kind"], e.get("by")) for e in log] == [
        ("created", None),
        ("ack", "cli"),
        ("close", "team:team-A"),
    ]
    assert log[2]["detail"] == "extinguished, by team:team-A: out"
    feed = [f[b"by"].decode() for _, f in redis_client.xrange("fw:feed") if f[b"kind"] == b"order"]
    assert feed == ["", "cli", "team:team-A"]
    code, _, err = _run(capsys, "dispatch", "arrive", oid(1), "--by", " ", *url)
    assert code == 2 and "who did it must be 1 to 200 printable characters" in err


def test_a_maintenance_order_is_listed_and_acknowledged_from_the_command_line(
    tmp_path: Path, redis_session: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    down = device("device_down", 0, dev="cam-9", source=Source.CAMERA)
    events = tmp_path / "events.jsonl"
    events.write_text(down.model_dump_json() + "\n")
    url = ["--redis-url", redis_session.url, "--rules", str(ROOT / "rules")]
    assert _run(capsys, "dispatch", "consume", str(events), *url)[0] == 0
    mid = maintenance_id(down.event_id)
    code, out, _ = _run(capsys, "maintenance", "list", "--team", "team-A", *url)
    assert code == 0 and f"{mid}  open     camera cam-9  cell 1  team team-A" in out
    assert "1 open maintenance orders for team-A" in out
    code, out, _ = _run(capsys, "maintenance", "ack", mid, "--by", "team:team-A", *url)
    assert code == 0 and out.rstrip().endswith("acknowledged by team:team-A")
    code, out, _ = _run(capsys, "maintenance", "ack", mid, *url)
    assert code == 0 and "nothing changed: acknowledged before by team:team-A" in out
    code, out, _ = _run(capsys, "maintenance", "list", "--json", *url)
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert (listed["id"], listed["acked_by"]) == (mid, "team:team-A")
    code, _, err = _run(capsys, "maintenance", "ack", "mnt-none", *url)
    assert code == 2 and "no maintenance order 'mnt-none'" in err
