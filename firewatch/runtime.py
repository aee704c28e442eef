"""Wiring shared by the entry points: settings -> grid, index, rules -> Engine."""

from __future__ import annotations

import logging

from firewatch.engine.core import Engine
from firewatch.geo.grid import GridSchema, load_grid
from firewatch.geo.index import load_index
from firewatch.rules import load_rules
from firewatch.settings import Settings

log = logging.getLogger(__name__)


def open_engine(settings: Settings) -> Engine:
    schema = GridSchema.from_yaml(settings.grid_schema) if settings.grid_schema else GridSchema()
    grid = load_grid(settings.grid, schema)
    for repair in grid.repairs:
        log.warning("grid repair: %s", repair)
    index = load_index(grid, settings.cache_dir)
    return Engine(grid, index, load_rules(settings.rules))
