"""Wiring shared by the entry points: settings -> grid, index, rules -> Engine; settings ->
Redis, routing rules -> Linkage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from firewatch.clock import Clock, SystemClock
from firewatch.engine.core import Engine
from firewatch.errors import FirewatchError
from firewatch.geo.grid import Grid, GridSchema, load_grid
from firewatch.geo.index import load_index
from firewatch.rules import load_rules
from firewatch.settings import Settings

if TYPE_CHECKING:
    from firewatch.linkage.service import Linkage

log = logging.getLogger(__name__)


def open_engine(settings: Settings) -> Engine:
    return engine_factory(settings)()


def open_grid(settings: Settings) -> Grid:
    """The forest grid of the settings (FIREWATCH_GRID, read with FIREWATCH_GRID_SCHEMA)."""
    schema = GridSchema.from_yaml(settings.grid_schema) if settings.grid_schema else GridSchema()
    return load_grid(settings.grid, schema)


def engine_factory(settings: Settings) -> Callable[[], Engine]:
    """Load the grid, its index and the rules once; each call makes a fresh Engine on them."""
    grid = open_grid(settings)
    for repair in grid.repairs:
        log.warning("grid repair: %s", repair)
    index = load_index(grid, settings.cache_dir)
    rules = load_rules(settings.rules)
    return lambda: Engine(grid, index, rules)


def open_linkage(settings: Settings, clock: Clock | None = None) -> Linkage:
    """The linkage queue on the configured Redis (the embedded server without a URL)."""
    from firewatch.linkage import server
    from firewatch.linkage.service import Linkage

    rules = load_rules(settings.rules)
    if rules.routing is None:
        raise FirewatchError(f"{settings.rules}: no `routing` section: the linkage queue needs one")
    client = server.connect(settings.redis_url, settings.redis_dir)
    return Linkage(client, rules.routing, clock or SystemClock())
