"""GET /v1/grid and GET /v1/cameras: the map's layers, as GeoJSON FeatureCollections.

The grid comes from `settings.grid` through `runtime.open_grid` (geo/grid.py `load_grid`, as the
engine loads it), on the first request that needs it (so building the app stays cheap), and is
kept with its answer: the cells' geometries simplified (SIMPLIFY degrees, topology preserved,
positions rounded to 6 decimals) and serialised once, and gzipped once for the clients that take
it. The cameras come from `settings.cameras`
(FIREWATCH_CAMERAS: a GeoJSON file of Points with a `device_id`, and `range_m` when known);
without it the collection is empty. Both are read once per API process: restart it to see a
changed file.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path as FilePath
from typing import Annotated, Any

import numpy as np
import orjson
import shapely
from fastapi import APIRouter, Depends, HTTPException, Request, Response

from firewatch.api.auth import Principal, require
from firewatch.api.deps import State
from firewatch.api.errors import AUTH, responses
from firewatch.api.schemas import CamerasOut, GridOut
from firewatch.errors import FirewatchError, GridError
from firewatch.geo.grid import Grid
from firewatch.runtime import open_grid
from firewatch.settings import Settings

router = APIRouter(tags=["map"])

Reader = Annotated[Principal, Depends(require("dashboard", "team"))]

SIMPLIFY = 1e-4  # degrees (about 10 m): invisible on the map, a fraction of the file's size
CACHE = "private, max-age=300"  # behind a token: a browser may keep it, a shared cache not
_STATE = "firewatch_layers"  # the attribute of app.state that holds this app's Layers
_made = threading.Lock()
_SERVER = responses(*AUTH, 500)
_SERVER[500] = {**_SERVER[500], "description": "The configured file cannot be read (the detail "
                "names the file and the feature)"}  # fmt: skip


class LayerError(FirewatchError):
    """A configured map file that cannot be read (names the file and the feature)."""


class Layers:
    """The map's layers of one app, built on first use and kept."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._grid: Grid | None = None
        self._index: dict[str, int] = {}
        self._grid_json: tuple[bytes, bytes] | None = None  # plain, gzip
        self._cameras_json: bytes | None = None

    def grid(self) -> Grid:
        with self._lock:
            if self._grid is None:
                try:
                    self._grid = open_grid(self.settings)
                except GridError as exc:
                    raise LayerError(f"the grid (FIREWATCH_GRID): {exc}") from None
                self._index = {c.id: c.index for c in self._grid.cells}
            return self._grid

    def cell_geometry(self, grid_id: str) -> dict[str, Any] | None:
        """A cell's exact geometry (GeoJSON); None when the grid has no such cell."""
        grid = self.grid()
        i = self._index.get(grid_id)
        return None if i is None else orjson.loads(shapely.to_geojson(grid.geoms[i]))

    def grid_json(self) -> tuple[bytes, bytes]:
        """The grid's FeatureCollection, plain and gzipped (a tenth of the size)."""
        grid = self.grid()
        with self._lock:
            if self._grid_json is None:
                body = _collection(grid)
                self._grid_json = body, gzip.compress(body, 6)
            return self._grid_json

    def cameras_json(self) -> bytes:
        with self._lock:
            if self._cameras_json is None:
                path = self.settings.cameras
                features = _cameras(path) if path is not None else []
                self._cameras_json = orjson.dumps(
                    {"type": "FeatureCollection", "features": features}
                )
            return self._cameras_json


def get_layers(request: Request, api: State) -> Layers:
    state = request.app.state
    with _made:
        layers = getattr(state, _STATE, None)
        if layers is None:
            layers = Layers(api.settings)
            setattr(state, _STATE, layers)
    return layers


LayersDep = Annotated[Layers, Depends(get_layers)]


def _collection(grid: Grid) -> bytes:
    simple = shapely.simplify(grid.geoms, SIMPLIFY, preserve_topology=True)
    rounded = shapely.transform(simple, lambda xy: np.round(xy, 6))
    features = [
        {
            "type": "Feature",
            "id": cell.id,
            "properties": {
                "grid_id": cell.id,
                "name": cell.name,
                "team": cell.team,
                "village": cell.village,
                "township": cell.township,
                "district": cell.district,
            },
            "geometry": orjson.Fragment(text),
        }
        for cell, text in zip(grid.cells, shapely.to_geojson(rounded), strict=True)
    ]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def _cameras(path: FilePath) -> list[dict[str, Any]]:
    where = f"cameras file {path} (FIREWATCH_CAMERAS)"
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise LayerError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise LayerError(f"{where}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise LayerError(f"{where}: not a GeoJSON FeatureCollection")
    return [_camera(feature, f"{where} feature {i}") for i, feature in enumerate(doc["features"])]


def _camera(feature: Any, where: str) -> dict[str, Any]:
    props = feature.get("properties") if isinstance(feature, dict) else None
    geometry = feature.get("geometry") if isinstance(feature, dict) else None
    if not isinstance(props, dict) or not isinstance(geometry, dict):
        raise LayerError(f"{where}: not a Feature with properties and a geometry")
    device = props.get("device_id")
    if not isinstance(device, str) or not device:
        raise LayerError(f"{where}: no `device_id` property (text)")
    position = geometry.get("coordinates")
    if (
        geometry.get("type") != "Point"
        or not isinstance(position, list)
        or len(position) < 2
        or not all(isinstance(v, int | float) for v in position[:2])
        or not (-180 <= position[0] <= 180 and -90 <= position[1] <= 90)
    ):
        raise LayerError(f"{where} ({device}): geometry is not a Point [lon, lat]")
    reach = props.get("range_m")
    if reach is not None and (
        isinstance(reach, bool) or not isinstance(reach, int | float) or reach < 0
    ):
        raise LayerError(f"{where} ({device}): `range_m` is not a number of metres")
    return {
        "type": "Feature",
        "id": device,
        "properties": {"device_id": device, "range_m": reach},
        "geometry": {"type": "Point", "coordinates": [position[0], position[1]]},
    }


def _answer(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": CACHE})


@router.get(
    "/v1/grid",
    summary="The forest grid's cells (GeoJSON; geometries simplified to about 10 m)",
    response_model=GridOut,
    responses=_SERVER,
)
def get_grid(_: Reader, layers: LayersDep, request: Request) -> Response:
    try:
        body, packed = layers.grid_json()
    except LayerError as exc:
        raise HTTPException(500, str(exc)) from None
    gzipped = "gzip" in request.headers.get("accept-encoding", "").lower()
    answer = _answer(packed if gzipped else body)
    answer.headers["Vary"] = "Accept-Encoding"
    if gzipped:
        answer.headers["Content-Encoding"] = "gzip"
    return answer


@router.get(
    "/v1/cameras",
    summary="Camera positions (GeoJSON Points; empty without FIREWATCH_CAMERAS)",
    response_model=CamerasOut,
    responses=_SERVER,
)
def get_cameras(_: Reader, layers: LayersDep) -> Response:
    try:
        return _answer(layers.cameras_json())
    except LayerError as exc:
        raise HTTPException(500, str(exc)) from None
