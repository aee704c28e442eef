"""Fires' places: tries ruled in or out by their anchors land where testing each try puts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firewatch.sim import draws
from firewatch.sim.placement import Placer
from firewatch.sim.scenario import Fire, plan_fires, satellite_passes
from firewatch.sim.timefmt import Stamps
from firewatch.sim.world import make_world, read_grid
from firewatch.simulate import CEMENT_WORKS, START

GRID = Path(__file__).resolve().parents[2] / "data" / "grids" / "qujiang.geojson"


def season_episode(seed: int, sensors: int, fires: int) -> list[Fire]:
    """One episode's fires as the demo season plans them (about 27 hours)."""

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([seed, stream])

    grid = read_grid(GRID)
    start_s = int(START.timestamp())
    end_s = start_s + 96_000
    world = make_world(grid, sensors, 24, rng(1), CEMENT_WORKS)
    passes = satellite_passes(Stamps(START), start_s, end_s, rng(3))
    return plan_fires(world, passes, fires, start_s, end_s, rng(4))


@pytest.mark.parametrize(("seed", "sensors"), [(1003, 30), (7, 0)])
def test_anchored_tries_give_the_places_of_tries_tested_one_by_one(
    seed: int, sensors: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crowded episode (37 fires, most placed at relax level 1 or 2) with the demo's sensors,
    and one without sensors (every fire near a cell). The reference draws every try with the
    loop and tests each on its own (draws.rounds says it cannot)."""
    at_once = season_episode(seed, sensors, 37)
    monkeypatch.setattr(draws, "rounds", lambda *_: None)
    assert season_episode(seed, sensors, 37) == at_once


def test_a_try_tested_alone_fits_as_it_fits_among_many() -> None:
    """_first_of tests the first try in Python numbers and the others as arrays: the rules give
    the same answers both ways, also at their edges (8 and 4 km from fires, 7 km from cameras,
    6 km from the static site, 2 km inside the grid and from sensors)."""
    grid = read_grid(GRID)
    world = make_world(grid, 30, 24, np.random.default_rng([1000, 1]), CEMENT_WORKS)
    placer = Placer.of(world)
    rng = np.random.default_rng(5)
    for x, y in world.sensors.xy[:12]:  # fires beside sensors: the sensor rules matter nearby
        placer.fires = np.append(placer.fires, [[x + 0.3], [y]], axis=1)
    centres = np.concatenate([placer.fires.T, world.cameras.xy, [world.static_xy]])
    anchor = centres[rng.integers(len(centres), size=4000)]
    angle, reach = rng.uniform(0, 2 * np.pi, 4000), rng.choice([2.0, 4.0, 6.0, 7.0, 8.0], 4000)
    reach += rng.normal(0, 1e-9, 4000) * rng.integers(0, 2, 4000)  # right at an edge, or a hair off
    x, y = anchor[:, 0] + reach * np.cos(angle), anchor[:, 1] + reach * np.sin(angle)
    sensor = rng.integers(-1, 30, size=4000)
    for kind in ("full", "quiet", "cameras", "remote"):
        for level in (0, 1, 2):
            ok = placer._exact(x, y, level)
            cells = grid.locate_all(x, y)
            fits = ok & (cells >= 0)
            if level == 0:
                fits &= placer._strict(kind, x, y, sensor)
            alone = [
                placer._fits(kind, level, (float(a), float(b), int(s)), False)
                for a, b, s in zip(x, y, sensor, strict=True)
            ]
            assert alone == np.where(fits, cells, -1).tolist(), (kind, level)
