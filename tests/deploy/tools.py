"""The command-line tools the deployment checks run: Debian's `promtool` (package `prometheus`,
installed by scripts/prometheus.sh) and `docker-compose` (scripts/compose.sh). `make test`
installs both when they are missing and the user is root; without them the checks skip, saying
what to run, and with CI=true they fail instead."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.services import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
RULES = DOCKER / "prometheus" / "rules" / "firewatch.rules.yml"
RULE_TESTS = DOCKER / "prometheus" / "tests"
PROMETHEUS_CONFIG = DOCKER / "prometheus" / "prometheus.yml"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "firewatch.json"
README = ROOT / "README.md"

INSTALLERS = {"promtool": "scripts/prometheus.sh", "docker-compose": "scripts/compose.sh"}


def require(tool: str) -> str:
    """The tool's path, or a skip (a failure under CI=true) naming the script that installs it."""
    path = shutil.which(tool)
    if path is None:
        skip_or_fail(
            f"{tool} is not on PATH: run `bash {INSTALLERS[tool]}` as root (make test does), "
            "or install the Debian package it names"
        )
    return path


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a tool and return what it said (exit code, stdout, stderr); never raises on failure."""
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """A tool's whole answer, for an assertion message."""
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"
