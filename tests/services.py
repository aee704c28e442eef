"""What the tests do when a server or tool they need is missing (Kafka's jars, chromium,
prometheus, promtool, docker-compose): `make test` installs or starts each one (scripts/), so a
laptop without it skips with the reason, and CI (CI=true) must have it and fails instead."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
