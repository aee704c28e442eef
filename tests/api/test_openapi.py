"""The OpenAPI document is complete: every route, its response model, its error answers and the
bearer scheme; the detection models that POST /v1/detections refers to."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from firewatch.api.app import ROUTERS

OPEN = {"/healthz", "/readyz", "/metrics"}


def test_every_route_is_documented_with_its_answers(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404  # no page that loads scripts from a CDN
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token made by `firewatch token add --role R --name N`",
    }
    assert doc["components"]["securitySchemes"]["session"]["in"] == "cookie"
    # every route of every router the app includes (FastAPI keeps included routers as such)
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert {r.path for r in routes} == {
        "/healthz",
        "/readyz",
        "/v1/dispatches",
        "/v1/dispatches/{order_id}",
        "/v1/dispatches/{order_id}/ack",
        "/v1/dispatches/{order_id}/arrive",
        "/v1/dispatches/{order_id}/close",
        "/v1/report",
        "/v1/detections",
        "/v1/incidents",
        "/v1/incidents/{incident_id}",
        "/v1/maintenance",
        "/v1/maintenance/{order_id}/ack",
        "/v1/masks",
        "/v1/masks/{name}",
        "/v1/grid",
        "/v1/cameras",
        "/v1/whoami",
        "/v1/session",
        "/v1/stream",
        "/metrics",
    }
    assert set(doc["paths"]) == {r.path for r in routes}
    schemas = doc["components"]["schemas"]
    for route in routes:
        for method in route.methods:
            op = doc["paths"][route.path][method.lower()]
            where = f"{method} {route.path}"
            if route.path == "/v1/session":
                assert "content" not in op["responses"]["204"], where
            elif route.path == "/v1/stream":
                assert "text/event-stream" in op["responses"]["200"]["content"], where
            elif route.path == "/metrics":  # Prometheus' text format
                assert "text/plain" in op["responses"]["200"]["content"], where
            else:
                success = "201" if "201" in op["responses"] else "200"  # POST /v1/masks: 201
                ok = op["responses"][success]["content"]["application/json"]["schema"]
                assert ok["$ref"].removeprefix("#/components/schemas/") in schemas, where
            if route.path == "/v1/session" and method == "DELETE":
                continue  # dropping the cookie needs no token
            if route.path in OPEN:
                assert "security" not in op, where
                continue
            # the session cookie is accepted on GET only (auth.py), as its description says; an
            # order's changes (auth.order_change) do not even declare it
            if route.path.startswith(("/v1/dispatches/{order_id}/", "/v1/maintenance/{order_id}/")):
                assert op["security"] == [{"bearer": []}], where
            else:
                assert op["security"] == [{"bearer": []}, {"session": []}], where
            for code in ("401", "403", "429", "503"):
                error = op["responses"][code]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorOut"}, where
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"], where
            assert "Retry-After" in op["responses"]["429"]["headers"], where
    paths = doc["paths"]
    for action in ("ack", "arrive", "close"):
        assert {"404", "409"} <= set(
            paths[f"/v1/dispatches/{{order_id}}/{action}"]["post"]["responses"]
        )
    assert {"404", "409"} <= set(paths["/v1/maintenance/{order_id}/ack"]["post"]["responses"])
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert {"413", "415", "400"} <= set(paths["/v1/detections"]["post"]["responses"])
    body = paths["/v1/detections"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/x-ndjson"}
    items = body["application/json"]["schema"]["items"]
    refs = {option["$ref"].rsplit("/", 1)[1] for option in items["oneOf"]}
    assert refs == {"SensorDetection", "CameraDetection", "SatelliteDetection"} <= set(schemas)
    close = paths["/v1/dispatches/{order_id}/close"]["post"]["requestBody"]
    assert close["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CloseIn"
    }
    params = {p["name"] for p in paths["/v1/report"]["get"]["parameters"]}
    assert params == {"from", "to", "by"}
    listing = paths["/v1/incidents"]["get"]
    assert "400" in listing["responses"] and "text/csv" in listing["responses"]["200"]["content"]
    assert {p["name"] for p in listing["parameters"]} == {
        *("status", "severity", "team", "village", "township", "district", "since", "until"),
        *("limit", "cursor", "format"),
    }
    assert "404" in paths["/v1/incidents/{incident_id}"]["get"]["responses"]
    assert {"404", "409"} <= set(paths["/v1/masks"]["post"]["responses"])
    assert "404" in paths["/v1/masks/{name}"]["delete"]["responses"]
    mute = paths["/v1/masks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert mute == {"$ref": "#/components/schemas/MuteIn"}
