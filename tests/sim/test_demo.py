"""`firewatch demo`: print-only (--no-serve), and served while the season plays in paced time.

The served runs are real processes on a free port (--port 0), with their own embedded Redis, as a
user starts them; each reads the links the demo prints and uses their tokens."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from firewatch.cli import main
from firewatch.linkage import keys
from firewatch.linkage.server import connect
from firewatch.model import EventKind
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.sim.defaults import DEMO_SEED, DEMO_SENSORS
from firewatch.sim.season import write_season
from firewatch.simulate import START

ROOT = Path(__file__).resolve().parents[2]
# a short season: one day, ten fires (one episode), played at thousands of times the wall clock
GRID, RULES = ROOT / "data/grids/qujiang.geojson", ROOT / "rules"
SHORT = ["--grid", str(GRID), "--rules", str(RULES), "--days", "1", "--fires", "10"]
LINK = re.compile(r"^  (dashboard|team|admin) +(http://[^#\s]+)#token=(\S+)")
PAGE_UP_S = 20  # the brief: the page is up within 20 s


@pytest.fixture(scope="module")
def warnings(tmp_path_factory: pytest.TempPathFactory) -> int:
    """The short season's warnings, from its input: the incidents the engine opens replaying the
    season the demo simulates (same seed, days, fires and sensors), one order each. (Seed 1 gives
    10 for its 10 fires; 12 from when cameras sent bearings with an error until towers facing
    each other across a fire were triangulated, #12: each had placed it on its own line.)"""
    path = tmp_path_factory.mktemp("season") / "season.jsonl"
    write_season(path, GRID, seed=DEMO_SEED, days=1, fires=10, sensors=DEMO_SENSORS)
    engine = open_engine(Settings(grid=GRID, rules=RULES, cache_dir=None))
    lines = path.read_bytes().splitlines()
    events = engine.process_lines(lines, "season").events + engine.flush()
    return sum(e.event is EventKind.OPENED for e in events)


def headline_from_redis(folder: Path) -> str:
    """The report's headline as the orders the season left in Redis say it (raw keys: every
    order hash by fw:orders:by_created), up to the time to acknowledge."""
    r = connect(None, folder)
    ids = [i.decode() for i in r.zrange(keys.ORDERS_BY_CREATED, 0, -1)]
    orders = [r.hgetall(keys.order(i)) for i in ids]
    n = len(orders)
    acked = sum(1 for o in orders if o.get(b"acked_at"))
    closed = sum(1 for o in orders if o[b"state"] == b"closed")
    escalated = sum(1 for o in orders if int(o.get(b"escalations", b"0")) > 0)
    return (
        f"{n} warnings issued, {acked} acknowledged ({acked / n:.1%} response rate), "
        f"{closed} closed ({closed / n:.1%}), {escalated} escalated, "
    )


def test_no_serve_prints_the_season_report_and_the_same_figures_every_time(
    warnings: int,
    tmp_path: Path,
    embedded_redis_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the locate-index cache (var/cache) goes here
    snapshot = tmp_path / "season.prom"
    args = ["demo", "--no-serve", *SHORT, "--redis-dir", str(embedded_redis_dir)]
    args += ["--metrics-out", str(snapshot)]
    runs = []
    for _ in range(2):
        assert main([*args, "--out", str(tmp_path / "out")]) == 0
        runs.append(capsys.readouterr().out.splitlines())
    first, again = runs
    assert first[0].startswith("season: 1 days from 2026-04-04, 10 fires, 30 sensors, seed 1:")
    assert first[1].startswith(f"redis:  the demo's own embedded server in {embedded_redis_dir}")
    assert first[2].startswith("time:   simulate ")
    # the headline: a warning for each incident the season's input opens; its other figures as
    # the orders in Redis say them
    assert first[4].startswith(f"{warnings} warnings issued, ")
    assert first[4].startswith(headline_from_redis(embedded_redis_dir))
    assert re.search(r", p50 time to acknowledge \d+ min$", first[4])
    assert any(line.startswith("dispatch report, all time") for line in first)
    assert [x for x in first if not x.startswith("time:")] == [
        x for x in again if not x.startswith("time:")
    ]
    assert not any("http://" in line for line in first)
    # the metrics snapshot of the (second) run: the same orders, from Redis
    assert first[-1] == f"metrics: {snapshot}"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(snapshot.read_text())
        for s in family.samples
    }
    orders = {
        dict(k[1])["state"]: v for k, v in samples.items() if k[0] == "firewatch_linkage_orders"
    }
    closed = re.search(r"(\d+) closed", first[4])
    assert closed is not None
    assert orders["closed"] == int(closed[1]) and sum(orders.values()) == warnings
    escalations = [v for k, v in samples.items() if k[0] == "firewatch_linkage_escalations_total"]
    steps = next(re.search(r"(\d+) escalation steps", x) for x in first if "escalation steps" in x)
    assert steps is not None and sum(escalations) == int(steps[1]) >= 1


@dataclass
class Demo:
    """A `firewatch demo` process and the lines it has printed."""

    process: subprocess.Popen[str]
    reader: threading.Thread
    lines: queue.Queue[str]
    seen: list[str]

    @classmethod
    def start(cls, tmp_path: Path, redis_dir: Path, *flags: str) -> Demo:
        command = [sys.executable, "-m", "firewatch", "demo", *SHORT, "--port", "0"]
        command += ["--redis-dir", str(redis_dir), "--out", str(tmp_path / "out"), *flags]
        process = subprocess.Popen(
            command,
            cwd=tmp_path,  # the locate-index cache (var/cache) goes here
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Ctrl-C as a terminal sends it: a test run started in the background (`make test &`,
            # nohup) ignores SIGINT, its children inherit that, and Python then never raises
            # KeyboardInterrupt (found 2026-12-05: the demo slept on through the test's SIGINT)
            preexec_fn=_sigint_default,
        )
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line.rstrip("\n"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        return cls(process, reader, lines, [])

    def until(self, pattern: str, deadline: float) -> str:
        """The first line (from now on) that matches `pattern`, printed before `deadline`."""
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                printed = "\n".join(self.seen)
                raise AssertionError(f"no {pattern!r} in time; printed:\n{printed}") from None
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def links(self, deadline: float) -> dict[str, tuple[str, str]]:
        """label -> (the page's URL, its token), from the printed links."""
        found = {}
        while len(found) < 3:
            match = LINK.match(self.until(LINK.pattern, deadline))
            assert match is not None
            found[match[1]] = (match[2], match[3])
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def get(url: str, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(url, headers=headers, timeout=10)


def test_the_demo_serves_the_api_while_the_season_plays_and_stops_on_ctrl_c(
    tmp_path: Path, embedded_redis_dir: Path
) -> None:
    started = time.monotonic()
    demo = Demo.start(tmp_path, embedded_redis_dir, "--speed", "1440")
    try:
        links = demo.links(started + PAGE_UP_S)
        base = links["dashboard"][0]
        assert {url for url, _ in links.values()} == {base}
        assert get(f"{base}healthz").status_code == 200
        assert time.monotonic() - started < PAGE_UP_S
        demo.until("playing the season at 1440x", time.monotonic() + 5)

        dashboard, team, admin = (links[k][1] for k in ("dashboard", "team", "admin"))
        assert get(f"{base}v1/report", dashboard).status_code == 200
        who = {k: get(f"{base}v1/whoami", token).json() for k, (_, token) in links.items()}
        assert who["dashboard"]["role"] == "dashboard" and who["admin"]["role"] == "admin"
        assert who["team"]["role"] == f"team:{who['team']['team']}"
        assert {w["rate"] for w in who.values()} == {1440.0}
        answer = get(f"{base}v1/dispatches?team={who['team']['team']}", team)
        assert answer.status_code == 200
        assert get(f"{base}v1/report").status_code == 401  # a token is needed
        # the season's metrics and the API's, for Prometheus (no token)
        metrics = get(f"{base}metrics")
        assert metrics.status_code == 200 and "firewatch_linkage_read_ok 1.0" in metrics.text
        assert 'firewatch_api_requests_total{method="GET",route="/v1/report"' in metrics.text

        # simulated time runs at 1440x from the season's start: a day a minute
        assert START <= datetime.fromisoformat(who["admin"]["now"]) < START + timedelta(days=1)
        detection = {
            "source": "camera",
            "device_id": "CAM-01",
            "observed_at": (START + timedelta(minutes=1)).isoformat(),
            "lat": 28.98,
            "lon": 118.97,
            "confidence": 0.9,
            "label": "flame",
        }
        refused = httpx.post(
            f"{base}v1/detections",
            json=[detection],
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )
        assert refused.status_code == 403 and "firewatch api" in refused.json()["detail"]

        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(timeout=20) == 0
        demo.until("stopping \\(Ctrl-C or SIGTERM\\)", time.monotonic() + 5)
        demo.until("stopped; the demo's Redis keeps running", time.monotonic() + 5)
        with pytest.raises(httpx.TransportError):
            get(f"{base}healthz")
    finally:
        demo.stop()


def test_the_demo_prints_the_report_when_the_season_is_over_and_can_exit_then(
    warnings: int, tmp_path: Path, embedded_redis_dir: Path
) -> None:
    started = time.monotonic()
    snapshot = tmp_path / "season.prom"
    flags = ("--speed", "100000", "--exit-after-season", "--metrics-out", str(snapshot))
    demo = Demo.start(tmp_path, embedded_redis_dir, *flags)
    try:
        links = demo.links(started + PAGE_UP_S)
        base, token = links["dashboard"]
        assert get(f"{base}v1/report", token).status_code == 200
        headline = demo.until("warnings issued", time.monotonic() + 40)
        assert headline.startswith(f"{warnings} warnings issued")
        demo.until("dispatch report, all time", time.monotonic() + 5)
        demo.until(f"metrics: {snapshot}", time.monotonic() + 5)
        assert demo.process.wait(timeout=20) == 0
    finally:
        demo.stop()
    # the snapshot written when the season was over agrees with the report's headline
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(snapshot.read_text())
        for s in family.samples
    }

    def total(name: str, **labels: str) -> float:
        return sum(
            v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
        )

    assert total("firewatch_linkage_warnings_total") == warnings
    assert total("firewatch_linkage_responses_total") == int(headline.split()[3])
    assert samples[("firewatch_linkage_response_ratio", (("district", "衢江区"),))] == (
        int(headline.split()[3]) / warnings
    )
    assert total("firewatch_engine_incident_events_total", event="opened") == warnings
    assert total("firewatch_api_requests_total", route="/v1/report", status="200") == 1
