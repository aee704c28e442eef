"""The dashboard in a real browser: Debian's chromium (scripts/browser.sh) driven by Playwright,
against the API on uvicorn with the test Redis, the test grid's engine and a FakeClock.

A fire reported over HTTP reaches the centre view's map, incident list and dispatch board through
the live event stream within 2 s; the team acknowledges and closes it on the phone view, and the
centre view's response and closure rates follow. Screenshots go to out/. Without chromium or
Playwright the test skips, saying what to install; under CI=true it fails instead.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from firewatch.api.server import Server
from firewatch.clock import FakeClock
from firewatch.linkage.service import Linkage

from ..linkage.test_maintenance import device
from ..services import skip_or_fail
from .conftest import ROOT, Bearer
from .live import serving
from .test_detections import camera, sensor
from .test_health import closed_port

CHROMIUM = Path("/usr/bin/chromium")
# headless on a closed network: no GPU, and none of chromium's own outgoing connections
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUT = ROOT / "out"
LIVE_S = 2.0  # from the POST's answer to the incident on the map, the list and the board
WAIT_MS = 10_000  # anything else the page shows after an action


def _playwright() -> Any:
    """playwright.sync_api, or a skip (a failure under CI=true) saying what is missing."""
    missing = []
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
        missing.append("the playwright package (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (run `bash scripts/browser.sh`, as root)")
    if missing:
        skip_or_fail(f"the dashboard's browser test needs {' and '.join(missing)}")
    return sync_api


@pytest.fixture
def browser() -> Iterator[Any]:
    """chromium with a fresh user-data-dir (launch() makes a new one every time, and each
    context in it is a separate, incognito-like profile: the centre view and the phone share
    neither localStorage nor cookies)."""
    sync_api = _playwright()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    with serving(app) as url:
        yield url


def post_json(url: str, body: Any, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def watch(page: Any) -> list[str]:
    """The page's script errors and console errors (a CSP refusal is one), as they come."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    return errors


def test_a_fire_goes_live_to_the_centre_view_and_is_closed_from_the_phone(
    browser: Any, base_url: str, bearer: Bearer, clock: FakeClock
) -> None:
    ingest, dashboard, team = bearer("ingest"), bearer("dashboard"), bearer("team:team-0-0")
    OUT.mkdir(exist_ok=True)

    # the duty officer's screen, with the token in the address's fragment
    centre = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    centre_errors = watch(centre)
    centre.goto(f"{base_url}/#token={token(dashboard)}")
    centre.wait_for_selector("[data-testid=connection][data-state=live]", timeout=WAIT_MS)
    assert "token" not in centre.url  # taken from the address bar into localStorage
    assert centre.get_attribute("#map", "data-cells") == "100"  # the test grid, no tiles
    assert centre.locator("[data-testid=incident-item]").count() == 0
    expect_text(centre, "today-issued", "0")

    # a camera sees flame in cell c0-0 (team-0-0); 11 minutes of event time later the grace
    # period is over and the engine opens the incident, which the linkage dispatches
    seen = clock.now() - timedelta(minutes=30)
    later = seen + timedelta(minutes=11)
    url = f"{base_url}/v1/detections"
    assert post_json(url, [camera(seen)], ingest)["accepted"] == 1
    assert post_json(url, [sensor(later), camera(later, n=2)], ingest)["accepted"] == 2
    posted = time.monotonic()
    for what in ("map-incident", "incident-item", "board-row"):
        centre.wait_for_selector(f"[data-testid={what}]", timeout=LIVE_S * 1000)
    live_s = time.monotonic() - posted
    assert live_s < LIVE_S
    assert centre.get_attribute("[data-testid=connection]", "data-state") == "live"
    item = centre.locator("[data-testid=incident-item]")
    assert item.count() == 1
    assert item.get_attribute("data-state") == "pending"
    # first seen 30 min before the (fake) server clock: counted on the server's clock
    assert "30 min ago" in item.locator("[data-testid=incident-age]").text_content()
    assert centre.text_content("[data-testid=new-badge]") == "1 new"
    row = centre.locator("[data-testid=board-row]")
    assert row.get_attribute("data-state") == "pending"
    assert "team-0-0" in row.text_content()
    expect_text(centre, "today-issued", "1")
    expect_text(centre, "today-response", "0 %")

    # the team's phone: only its own order, big buttons
    phone_context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    phone = phone_context.new_page()
    phone_errors = watch(phone)
    phone.goto(f"{base_url}/#token={token(team)}")
    order = phone.locator("[data-testid=phone-order]")
    order.wait_for(timeout=WAIT_MS)
    assert order.count() == 1 and order.get_attribute("data-state") == "pending"
    order.locator("[data-testid=ack]").click()
    phone.wait_for_selector("[data-testid=phone-order][data-state=acknowledged]", timeout=WAIT_MS)
    phone.screenshot(path=str(OUT / "dashboard-phone.png"))

    centre.wait_for_selector("[data-testid=board-row][data-state=acknowledged]", timeout=WAIT_MS)
    expect_text(centre, "today-response", "100 %")
    expect_text(centre, "today-closure", "0 %")

    # close: the fire was put out
    order.locator("[data-testid=close]").click()
    dialog = phone.locator("[data-testid=close-dialog]")
    dialog.wait_for(state="visible", timeout=WAIT_MS)
    dialog.get_by_label("False alarm").check()
    causes = dialog.locator("select[name=cause] option").evaluate_all("os => os.map(o => o.value)")
    assert "known_heat_source" in causes  # rules/routing.yaml's closed-loop causes
    dialog.get_by_label("Fire, put out").check()
    dialog.locator("[data-testid=close-confirm]").click()
    phone.wait_for_selector("[data-testid=phone-empty]:visible", timeout=WAIT_MS)
    assert phone.locator("[data-testid=phone-order]").count() == 0

    centre.wait_for_selector("[data-testid=board-empty]:visible", timeout=WAIT_MS)
    expect_text(centre, "today-closure", "100 %")
    expect_text(centre, "month-closure", "100 %")
    assert item.get_attribute("data-state") == "closed"  # the incident, its order closed
    centre.screenshot(path=str(OUT / "dashboard-centre.png"), full_page=True)

    # a reload shows the same picture: state comes only from the API and the stream
    centre.reload()
    centre.wait_for_selector("[data-testid=connection][data-state=live]", timeout=WAIT_MS)
    assert centre.locator("[data-testid=incident-item][data-state=closed]").count() == 1
    assert centre.locator("[data-testid=board-row]").count() == 0
    assert centre.text_content("[data-testid=new-badge]") == "1 new"  # still not looked at
    expect_text(centre, "today-response", "100 %")

    assert centre_errors == [] and phone_errors == []
    print(f"\nincident live on the centre view {live_s * 1000:.0f} ms after the POST")


def expect_text(page: Any, testid: str, text: str) -> None:
    page.wait_for_function(
        "([id, text]) => document.querySelector(`[data-testid=${id}]`)?.textContent === text",
        arg=[testid, text],
        timeout=WAIT_MS,
    )


def open_fire(base_url: str, ingest: dict[str, str], clock: FakeClock) -> None:
    """Detections that open an incident in cell c0-0 (and a dispatch order for team-0-0)."""
    seen = clock.now() - timedelta(minutes=30)
    later = seen + timedelta(minutes=11)
    url = f"{base_url}/v1/detections"
    post_json(url, [camera(seen)], ingest)
    post_json(url, [sensor(later), camera(later, n=2)], ingest)


def test_an_admin_mutes_a_cell_picked_on_the_map_and_exports_the_history(
    browser: Any, base_url: str, bearer: Bearer, clock: FakeClock, tmp_path: Path
) -> None:
    open_fire(base_url, bearer("ingest"), clock)
    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    errors = watch(page)
    page.goto(f"{base_url}/#token={token(bearer('admin'))}")
    page.wait_for_selector("[data-testid=connection][data-state=live]", timeout=WAIT_MS)
    page.wait_for_selector("[data-testid=incident-item]", timeout=WAIT_MS)

    # a click on a cell of the map picks it for muting
    page.locator("#map").click()  # its centre: a cell of the 10 x 10 test grid
    picked = page.input_value("[data-testid=mute-form] [name=grid_id]")
    assert picked.startswith("c") and "-" in picked
    page.select_option("[data-testid=mute-form] [name=minutes]", "180")
    page.fill("[data-testid=mute-form] [name=note]", "burning stubble, announced")
    page.click("[data-testid=mute-form] button[type=submit]")
    mask = page.locator(f"[data-testid=mask-item][data-grid='{picked}']")
    mask.wait_for(timeout=WAIT_MS)
    assert "burning stubble, announced" in mask.text_content()
    mask.get_by_role("button").click()
    mask.wait_for(state="detached", timeout=WAIT_MS)

    # history: the last seven days of the server's calendar, and the same query as CSV
    page.click(".history-panel summary")
    page.click("[data-testid=history-form] button[type=submit]")
    row = page.locator("[data-testid=history-row]")
    row.first.wait_for(timeout=WAIT_MS)
    incident = row.first.get_attribute("data-incident")
    with page.expect_download(timeout=WAIT_MS) as download:
        page.click("[data-testid=history-csv]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".csv" and incident in saved.read_text()
    assert errors == []


def test_a_silent_device_and_a_blind_cell_show_live_and_go_when_it_is_back(
    browser: Any, base_url: str, bearer: Bearer, linkage: Linkage, clock: FakeClock
) -> None:
    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    errors = watch(page)
    page.goto(f"{base_url}/#token={token(bearer('dashboard'))}")
    page.wait_for_selector("[data-testid=connection][data-state=live]", timeout=WAIT_MS)
    page.wait_for_selector("[data-testid=maintenance-empty]:visible", timeout=WAIT_MS)

    # the engine's device events, as the dispatcher delivers them: through the change feed
    blind = device("cell_blind", 0, dev=None, grid_id="c0-0")  # a cell of the test grid
    linkage.consume([device("device_down", 0, dev="S-7"), blind])
    item = page.locator("[data-testid=maintenance-item][data-subject=S-7]")
    item.wait_for(timeout=WAIT_MS)
    assert "sensor S-7 silent" in item.text_content() and "team-A" in item.text_content()
    page.locator("[data-testid=maintenance-item][data-kind=cell]").wait_for(timeout=WAIT_MS)
    expect_text(page, "maintenance-count", "(2)")
    page.wait_for_selector("#map[data-blind='1']", timeout=WAIT_MS)  # outlined on the map
    expect_text(page, "today-issued", "0")  # not a fire warning

    clock.advance(minutes=30)
    linkage.consume([device("device_up", 20, dev="S-7")])
    item.wait_for(state="detached", timeout=WAIT_MS)
    expect_text(page, "maintenance-count", "(1)")
    clock.advance(minutes=30)
    linkage.consume([device("cell_watched", 50, dev=None, grid_id="c0-0")])
    page.wait_for_selector("#map[data-blind='0']", timeout=WAIT_MS)
    page.wait_for_selector("[data-testid=maintenance-empty]:visible", timeout=WAIT_MS)
    assert errors == []


def test_a_team_takes_on_its_silent_device_from_the_phone(
    browser: Any, base_url: str, bearer: Bearer, linkage: Linkage, clock: FakeClock
) -> None:
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    ).new_page()
    errors = watch(phone)
    phone.goto(f"{base_url}/#token={token(bearer('team:team-A'))}")
    phone.wait_for_selector("[data-testid=connection][data-state=live]", timeout=WAIT_MS)
    phone.wait_for_selector("[data-testid=phone-maintenance-empty]:visible", timeout=WAIT_MS)

    # another team's silent device is not on this phone; its own comes live
    linkage.consume([device("device_down", 0, dev="S-8", team="team-B")])
    linkage.consume([device("device_down", 1, dev="S-7")])
    item = phone.locator("[data-testid=maintenance-item]")
    item.wait_for(timeout=WAIT_MS)
    assert item.count() == 1 and "sensor S-7 silent" in item.text_content()
    expect_text(phone, "phone-maintenance-count", "(1)")
    clock.advance(minutes=5)
    item.locator("[data-testid=maintenance-ack]").click()
    phone.wait_for_selector("[data-testid=maintenance-item][data-acked='1']", timeout=WAIT_MS)
    assert "on it: team:team-A" in item.text_content()
    assert item.locator("[data-testid=maintenance-ack]").count() == 0
    (mine,) = linkage.maintenance.open_orders("team-A")  # in Redis, not the page
    assert mine.acked_by == "team:team-A" and mine.acked_at == clock.now()
    phone.screenshot(path=str(OUT / "dashboard-phone-maintenance.png"))

    clock.advance(minutes=30)
    linkage.consume([device("device_up", 35, dev="S-7")])  # the device reports: resolved
    phone.wait_for_selector("[data-testid=phone-maintenance-empty]:visible", timeout=WAIT_MS)
    assert errors == []


def test_the_connection_indicator_shows_the_stream_down_and_it_resumes_by_itself(
    browser: Any, make_app: Any, bearer: Bearer, clock: FakeClock
) -> None:
    port = closed_port()
    dashboard = token(bearer("dashboard"))
    page = browser.new_context().new_page()
    with running(make_app(), port) as base_url:
        page.goto(f"{base_url}/#token={dashboard}")
        page.wait_for_selector("[data-testid=connection][data-state=live]", timeout=WAIT_MS)
    # the API is gone: the page says so, and keeps trying
    page.wait_for_selector("[data-testid=connection][data-state=down]", timeout=WAIT_MS)
    with running(make_app(), port) as base_url:  # back on the same address
        page.wait_for_selector("[data-testid=connection][data-state=live]", timeout=WAIT_MS)
        open_fire(base_url, bearer("ingest"), clock)
        page.wait_for_selector("[data-testid=incident-item]", timeout=LIVE_S * 1000)


@contextmanager
def running(app: FastAPI, port: int) -> Iterator[str]:
    """The app on uvicorn at 127.0.0.1:`port` (tests/api/live.py's `serving` picks a new port
    each time; a page that reconnects needs the same one)."""
    server = Server(app, "127.0.0.1", port, log_level="warning")
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(20)
        assert not thread.is_alive(), "the API server did not stop"
