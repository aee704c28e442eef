#!/usr/bin/env bash
# Debian's `prometheus` package: the server (the metrics test scrapes firewatch with it) and
# `promtool` (checks the alert rules, their unit tests, the Prometheus config and every Grafana
# panel's query). Installed with apt-get when missing and the user is root; otherwise this says
# what to run, and the tests skip (or fail under CI=true) saying the same.
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "prometheus.sh: prometheus/promtool are missing; the metrics and alert-rule tests need them. Run:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus" >&2
    exit 0 # the tests skip (or fail under CI=true) and say so
fi
echo "prometheus.sh: installing Debian's prometheus (server and promtool, for tests/deploy and the metrics tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: no node exporter; the package's service is not started in a container
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
promtool --version 2>&1 | head -n 1
