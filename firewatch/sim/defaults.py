"""`firewatch demo`'s defaults, apart from the demo itself: the command line builds its parser
from them without importing the engine (which costs every command about a second)."""

from __future__ import annotations

from pathlib import Path

# `firewatch demo --no-serve`: 268 warnings in about 10 s here.
DEMO_SEED, DEMO_DAYS, DEMO_FIRES, DEMO_SENSORS = 1, 10.0, 330, 30
DEMO_BATCH_SIZE = 500  # about 2 h of the demo stream: masks reach the engine within a batch
DEMO_REDIS_DIR = Path("var/demo-redis")  # the demo's own embedded Redis, emptied at every run
DEMO_SPEED = 1440.0  # served: simulated seconds per wall second, the 10 days in 10 minutes
