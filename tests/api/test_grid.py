"""GET /v1/grid and GET /v1/cameras: the map's layers as GeoJSON, the grid loaded by the project's
loader on the first request (not by create_app), simplified, kept, and cacheable by the browser;
cameras from the FIREWATCH_CAMERAS file."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from firewatch.api import grid
from firewatch.geo.grid import Grid
from firewatch.runtime import open_grid
from firewatch.settings import Settings

from .conftest import Bearer

ROOT = Path(__file__).resolve().parents[2]


def test_the_grid_is_geojson_loaded_once_on_first_request(
    make_app: Callable[..., FastAPI], bearer: Bearer, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Path] = []

    def counting(settings: Settings) -> Grid:
        loads.append(settings.grid)
        return open_grid(settings)

    monkeypatch.setattr(grid, "open_grid", counting)
    with TestClient(make_app()) as client:
        assert loads == []  # building and starting the app loads no grid
        answer = client.get("/v1/grid", headers=bearer("dashboard"))
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "private, max-age=300"
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["type"] == "FeatureCollection" and len(body["features"]) == 100
        first = body["features"][0]
        assert first == {
            "type": "Feature",
            "id": "c0-0",
            "properties": {
                "grid_id": "c0-0",
                "name": "cell 0-0",
                "team": "team-0-0",
                "village": "v0-0",
                "township": "t0",
                "district": "test",
            },
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[118.8, 28.9], [118.81, 28.9], [118.81, 28.91], [118.8, 28.91], [118.8, 28.9]]
                ],
            },
        }
        again = client.get("/v1/grid", headers=bearer("team:team-0-0"))
        assert again.status_code == 200 and again.content == answer.content
        assert len(loads) == 1


def test_the_grid_is_simplified_and_gzipped_for_clients_that_take_it(
    make_app: Callable[..., FastAPI], bearer: Bearer
) -> None:
    qujiang = ROOT / "data" / "grids" / "qujiang.geojson"
    with TestClient(make_app(grid=qujiang)) as client:
        headers = bearer("dashboard")
        # TestClient asks for gzip and unpacks it; read the bytes as they were sent
        with client.stream("GET", "/v1/grid", headers=headers) as sent:
            assert sent.headers["content-encoding"] == "gzip"
            assert sent.headers["vary"] == "Accept-Encoding"
            packed = b"".join(sent.iter_raw())
        plain = client.get("/v1/grid", headers={**headers, "Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert gzip.decompress(packed) == plain.content
    cells = json.loads(qujiang.read_bytes())["features"]
    served = plain.json()["features"]
    assert [f["id"] for f in served] == [c["properties"]["id"] for c in cells]
    assert len(packed) < len(plain.content) / 5  # 48 kB instead of 660 kB, mostly properties
    points = sum(len(ring) for f in served for ring in _rings(f["geometry"]))
    assert points < sum(len(ring) for c in cells for ring in _rings(c["geometry"]))


def _rings(geometry: dict[str, Any]) -> list[list[Any]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


def test_cameras_come_from_the_configured_file(
    make_app: Callable[..., FastAPI], bearer: Bearer, tmp_path: Path
) -> None:
    headers = bearer("team:team-0-0")
    with TestClient(make_app()) as client:  # no FIREWATCH_CAMERAS: no cameras
        answer = client.get("/v1/cameras", headers=headers)
        assert answer.json() == {"type": "FeatureCollection", "features": []}
    path = tmp_path / "cameras.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    _point(
                        {"device_id": "CAM-01", "range_m": 8000, "mast": "north"}, 118.85, 28.95
                    ),
                    _point({"device_id": "CAM-02"}, 118.81, 28.99),
                ],
            }
        )
    )
    settings = Settings.from_env({"FIREWATCH_CAMERAS": str(path)})
    assert settings.cameras == path
    with TestClient(make_app(cameras=settings.cameras)) as client:
        answer = client.get("/v1/cameras", headers=headers)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "private, max-age=300"
        assert answer.json()["features"] == [
            {
                "type": "Feature",
                "id": "CAM-01",
                "properties": {"device_id": "CAM-01", "range_m": 8000},
                "geometry": {"type": "Point", "coordinates": [118.85, 28.95]},
            },
            {
                "type": "Feature",
                "id": "CAM-02",
                "properties": {"device_id": "CAM-02", "range_m": None},
                "geometry": {"type": "Point", "coordinates": [118.81, 28.99]},
            },
        ]


def _point(properties: dict[str, Any], lon: float, lat: float) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "not JSON"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        (
            json.dumps({"type": "FeatureCollection", "features": [_point({}, 118.8, 28.9)]}),
            "feature 0: no `device_id` property (text)",
        ),
        (
            json.dumps(
                {"type": "FeatureCollection", "features": [_point({"device_id": "C"}, 200, 28.9)]}
            ),
            "feature 0 (C): geometry is not a Point [lon, lat]",
        ),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [_point({"device_id": "C", "range_m": "far"}, 118.8, 28.9)],
                }
            ),
            "feature 0 (C): `range_m` is not a number of metres",
        ),
    ],
)
def test_a_bad_cameras_file_is_a_500_naming_the_file_and_feature(
    make_app: Callable[..., FastAPI], bearer: Bearer, tmp_path: Path, content: str, detail: str
) -> None:
    path = tmp_path / "cameras.geojson"
    path.write_text(content)
    with TestClient(make_app(cameras=path)) as client:
        answer = client.get("/v1/cameras", headers=bearer("dashboard"))
    assert answer.status_code == 500
    assert answer.json()["detail"].startswith(f"cameras file {path} (FIREWATCH_CAMERAS)")
    assert detail in answer.json()["detail"]


def test_a_grid_that_cannot_be_read_is_a_500_naming_it(
    make_app: Callable[..., FastAPI], bearer: Bearer, tmp_path: Path
) -> None:
    with TestClient(make_app(grid=tmp_path / "nowhere.geojson")) as client:
        answer = client.get("/v1/grid", headers=bearer("dashboard"))
    assert answer.status_code == 500
    assert answer.json()["detail"].startswith(
        f"the grid (FIREWATCH_GRID): {tmp_path / 'nowhere.geojson'}: cannot read the grid file"
    )


def test_the_map_layers_need_a_reading_role(client: TestClient, bearer: Bearer) -> None:
    ingest = bearer("ingest")
    for path in ("/v1/grid", "/v1/cameras"):
        assert client.get(path).status_code == 401
        refused = client.get(path, headers=ingest)
        assert refused.status_code == 403
        assert refused.json()["detail"].endswith("this needs admin or dashboard or team:<id>")
        assert client.get(path, headers=bearer("admin", name=f"admin{len(path)}")).is_success


def test_the_types_of_the_answer_are_in_the_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, model in (("/v1/grid", "GridOut"), ("/v1/cameras", "CamerasOut")):
        ok = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}
