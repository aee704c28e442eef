#!/usr/bin/env bash
# `make demo`: the Qujiang simulation and the real California FIRMS file through the engine.
set -euo pipefail
cd "$(dirname "$0")/.."
FW=".venv/bin/python -m firewatch"
OUT=out
mkdir -p "$OUT"

echo "== Qujiang district (衢江区): simulated sensors, cameras and satellite passes"
$FW simulate --grid data/grids/qujiang.geojson --seed 1 --hours 24 --out "$OUT/qujiang-stream.jsonl"
$FW replay "$OUT/qujiang-stream.jsonl" \
    --out "$OUT/qujiang-events.jsonl" --rejects "$OUT/qujiang-rejects.jsonl"
echo
echo "== California, 2020-09-30/10-01: NASA FIRMS MODIS hotspots against USFS ranger districts"
$FW replay data/firms/modis_c6_usa_24h_2020-10-01.csv \
    --grid data/polygons/usfs_ranger_districts_california.geojson \
    --grid-schema data/grids/california.yaml \
    --out "$OUT/california-events.jsonl" --rejects "$OUT/california-rejects.jsonl"
echo
echo "incident events: $OUT/qujiang-events.jsonl, $OUT/california-events.jsonl"
