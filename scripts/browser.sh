#!/usr/bin/env bash
# The browser the dashboard test drives: Debian's chromium at /usr/bin/chromium, through Playwright
# (PyPI), never `playwright install` (it downloads a browser build, which this network refuses).
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser.sh: $CHROMIUM is missing; the dashboard's browser test needs it. Run:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y chromium" >&2
    exit 0  # the test skips (or fails under CI=true) and says so
fi
echo "browser.sh: installing Debian's chromium (for tests/api/test_dashboard_browser.py)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version
