"""Grafana, provisioned from files: the datasource the dashboard names, the dashboard folder
docker/compose.yaml mounts, and one dashboard with the pipeline and the outcome side by side.
(Its queries: test_queries.py.)"""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import yaml

from tests.deploy.stack import services
from tests.deploy.tools import DASHBOARD, DOCKER

PROVISIONING = DOCKER / "grafana" / "provisioning"


def _dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return result


def _mounts() -> dict[str, str]:
    """grafana's bind mounts: container path -> path in the repository (relative to docker/)."""
    out = {}
    for volume in services()["grafana"]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            out[target] = source
    return out


def test_the_datasource_is_the_compose_prometheus() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text("utf-8"))
    (source,) = doc["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in services()
    uids = {
        target["datasource"]["uid"]
        for panel in _dashboard()["panels"]
        for target in panel.get("targets", [])
    } | {p["datasource"]["uid"] for p in _dashboard()["panels"] if "datasource" in p}
    assert uids == {source["uid"]}


def test_the_dashboard_folder_is_the_one_mounted() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "firewatch.yml").read_text("utf-8"))
    (provider,) = doc["providers"]
    mounts = _mounts()
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert (DOCKER / "grafana" / "dashboards" / DASHBOARD.name).is_file()


def test_pipeline_and_outcome_side_by_side() -> None:
    """Every panel in one of two columns (pipeline left, outcome right), none overlapping."""
    panels = _dashboard()["panels"]
    boxes = [(p["title"], p["gridPos"]) for p in panels]
    for title, box in boxes:
        assert box["x"] + box["w"] <= 12 or box["x"] >= 12, f"{title!r} spans both columns"
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"panels {a!r} and {b!r} overlap"
    left = " ".join(t for t, box in boxes if box["x"] < 12)
    right = " ".join(t for t, box in boxes if box["x"] >= 12)
    for word in ("Detections/s by source", "Batch latency p99", "Rejects", "Consumer lag"):
        assert word in left, word
    for word in ("Fire warnings", "Response rate", "Closure rate", "Time to acknowledge"):
        assert word in right, word
    assert len({p["id"] for p in panels}) == len(panels)
