"""POST /v1/detections: JSON arrays and JSON lines validated as the workers do (with the API's
clock as arrival time), accepted records to the in-process engine and on to the linkage queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.testclient import TestClient

from firewatch.clock import FakeClock
from firewatch.linkage.service import Linkage

from .conftest import Bearer


def camera(at: datetime, n: int = 1, **extra: Any) -> dict[str, Any]:
    """A confident flame seen by a camera in cell c0-0 of the test grid (team team-0-0)."""
    record = {
        "id": f"cam-{n}",
        "source": "camera",
        "device_id": f"cam-dev-{n}",
        "observed_at": at.isoformat(),
        "lat": 28.905,
        "lon": 118.805,
        "confidence": 0.95,
        "label": "flame",
    }
    return {**record, **extra}


def sensor(at: datetime, n: int = 1) -> dict[str, Any]:
    """A normal reading: no fire signal, but it moves event time on."""
    return {
        "source": "sensor",
        "device_id": f"s-{n}",
        "observed_at": at.isoformat(),
        "lat": 28.955,
        "lon": 118.855,
        "readings": {"temperature_c": 21.0},
    }


def test_a_json_array_is_validated_record_by_record(
    client: TestClient, bearer: Bearer, clock: FakeClock
) -> None:
    now = clock.now()
    records = [
        sensor(now - timedelta(minutes=5)),
        {"source": "camera", "device_id": "c"},  # no observed_at, lat, ...
        sensor(now + timedelta(minutes=4)),  # ahead, within sources.max_future (5 min)
        sensor(now + timedelta(minutes=10), n=2),  # a device clock ahead: refused
        camera(now, confidence=1.5),
        {**sensor(now), "lat": 91},
    ]
    answer = client.post("/v1/detections", json=records, headers=bearer("ingest"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 2 and body["rejected"] == 4 and body["destination"] == "engine"
    assert [(r["index"], r["reason"], r["field"]) for r in body["rejects"]] == [
        (1, "missing_field", "observed_at"),
        (3, "future_timestamp", "observed_at"),
        (4, "invalid_value", "confidence"),
        (5, "bad_coordinate", "lat"),
    ]
    assert "the device's clock ahead" in body["rejects"][1]["message"]


def test_json_lines_count_lines_from_zero(
    client: TestClient, bearer: Bearer, clock: FakeClock
) -> None:
    lines = [
        orjson.dumps(sensor(clock.now())),
        b"",
        b"{not json",
        orjson.dumps(sensor(clock.now())),
    ]
    answer = client.post(
        "/v1/detections",
        content=b"\r\n".join(lines) + b"\n",
        headers={**bearer("ingest"), "Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 2 and body["rejected"] == 1
    assert body["rejects"][0]["index"] == 2 and body["rejects"][0]["reason"] == "malformed_json"


def test_bodies_the_api_does_not_read_name_why(
    make_app: Callable[..., FastAPI], bearer: Bearer
) -> None:
    headers = bearer("ingest")
    with TestClient(make_app(api_max_body_bytes=2048)) as client:
        plain = client.post(
            "/v1/detections", content=b"[]", headers={**headers, "Content-Type": "text/plain"}
        )
        assert plain.status_code == 415 and "application/x-ndjson" in plain.json()["detail"]
        for body, why in ((b"{}", "a JSON dict, not an array"), (b"[1,", "body is not JSON")):
            answer = client.post(
                "/v1/detections",
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            )
            assert answer.status_code == 400 and why in answer.json()["detail"]
        big = b"[" + b" " * 4096 + b"]"
        answer = client.post(
            "/v1/detections", content=big, headers={**headers, "Content-Type": "application/json"}
        )
        assert answer.status_code == 413
        assert answer.json()["detail"] == "body of 4,098 bytes: at most 2,048 accepted"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b"["
            for _ in range(10):
                yield b" " * 400

        answer = client.post(
            "/v1/detections",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert answer.status_code == 413
        assert answer.json()["detail"] == "body longer than the 2,048 bytes accepted"


def test_a_fire_sent_over_http_becomes_a_dispatch_order(
    client: TestClient, bearer: Bearer, linkage: Linkage, clock: FakeClock
) -> None:
    ingest, dashboard = bearer("ingest"), bearer("dashboard")
    seen = clock.now() - timedelta(minutes=30)
    assert (
        client.post("/v1/detections", json=[camera(seen)], headers=ingest).json()["accepted"] == 1
    )
    listing = {"params": {"team": "team-0-0"}, "headers": dashboard}
    assert client.get("/v1/dispatches", **listing).json()["orders"] == []  # in the grace period
    # event time moves past the grace period (10 min): the engine opens the incident, and its
    # event goes to the linkage queue
    later = [sensor(seen + timedelta(minutes=11)), camera(seen + timedelta(minutes=11), n=2)]
    assert client.post("/v1/detections", json=later, headers=ingest).json()["accepted"] == 2
    orders = client.get("/v1/dispatches", **listing).json()["orders"]
    assert len(orders) == 1 and orders[0]["team"] == "team-0-0"
    assert datetime.fromisoformat(orders[0]["detected_at"]) == seen
    assert linkage.store.get(orders[0]["id"]).state == "pending"
    # the same records again (a client's retry): the engine drops them, nothing new
    again = client.post("/v1/detections", json=[camera(seen), *later], headers=ingest)
    assert again.json()["accepted"] == 3
    assert len(client.get("/v1/dispatches", **listing).json()["orders"]) == 1
