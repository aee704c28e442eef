"""The forest grid (loading, repair) and the vectorised locate index."""

from firewatch.geo.grid import Cell, Grid, GridSchema, Repair, find_overlaps, load_grid, make_grid
from firewatch.geo.index import LocateIndex, LocateStats, cache_key, load_index
from firewatch.geo.tiling import IndexParams

__all__ = [
    "Cell",
    "Grid",
    "GridSchema",
    "IndexParams",
    "LocateIndex",
    "LocateStats",
    "Repair",
    "cache_key",
    "find_overlaps",
    "load_grid",
    "load_index",
    "make_grid",
]
