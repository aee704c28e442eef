#!/usr/bin/env bash
# `make demo`: the real California FIRMS file through the engine, then a simulated Qujiang fire
# season end to end (engine, dispatch on an embedded Redis, field teams, escalation, report),
# played in accelerated time while the API serves the dashboard: open a printed link. It serves
# until Ctrl-C. DEMO_ARGS go to `firewatch demo`: `make demo DEMO_ARGS=--no-serve` for a run
# that prints the report and ends, `DEMO_ARGS="--speed 5000 --port 8001"`, ...
set -euo pipefail
cd "$(dirname "$0")/.."
FW=".venv/bin/python -m firewatch"
OUT=out
mkdir -p "$OUT"

echo "== California, 2020-09-30/10-01: NASA FIRMS MODIS hotspots against USFS ranger districts"
$FW replay data/firms/modis_c6_usa_24h_2020-10-01.csv \
    --grid data/polygons/usfs_ranger_districts_california.geojson \
    --grid-schema data/grids/california.yaml \
    --out "$OUT/california-events.jsonl" --rejects "$OUT/california-rejects.jsonl"
echo
echo "== Qujiang district (衢江区): a simulated fire season, detections to closed dispatch orders"
# shellcheck disable=SC2086  # DEMO_ARGS is a list of flags
$FW demo --out "$OUT" ${DEMO_ARGS:-}
$FW redis stop --redis-dir var/demo-redis >/dev/null
