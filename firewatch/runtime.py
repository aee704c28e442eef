"""Wiring shared by the entry points: settings -> grid, index, rules -> Engine."""

from __future__ import annotations

import logging
from collections.abc import Callable

from firewatch.engine.core import Engine
from firewatch.geo.grid import GridSchema, load_grid
from firewatch.geo.index import load_index
from firewatch.rules import load_rules
from firewatch.settings import Settings

log = logging.getLogger(__name__)


def open_engine(settings: Settings) -> Engine:
    return engine_factory(settings)()


def engine_factory(settings: Settings) -> Callable[[], Engine]:
    """Load the grid, its index and the rules once; each call makes a fresh Engine on them."""
    schema = GridSchema.from_yaml(settings.grid_schema) if settings.grid_schema else GridSchema()
    grid = load_grid(settings.grid, schema)
    for repair in grid.repairs:
        log.warning("grid repair: %s", repair)
    index = load_index(grid, settings.cache_dir)
    rules = load_rules(settings.rules)
    return lambda: Engine(grid, index, rules)
