"""Where a fire goes: seeded tries, the first that meets the rules of its relax level.

A fire's tries are those of a loop drawing one try at a time (so that a seed gives the same
places whatever the speed-up): an anchor (a sensor, or a high-risk cell's centre) and a point
within `radius` of it. The first PLACE_TRIES tries ask for everything (8 km from other fires, a
camera within 7 km, 6 km from the static heat source, 2 km inside the grid, the kind's sensor
layout), the next PLACE_TRIES only 4 km between fires, the last any cell.

All of a fire's tries are worked out at once from the generator's words (draws.py), then the one
the loop would stop at is drawn for real, which checks the arrays and leaves the generator where
the loop would (if it differs, the tries are drawn one by one). Most tries are ruled in or out
by their anchor alone: a try is within `radius` of its anchor, so an anchor more than `radius`
(and a hair) on the right side of a distance rule settles it for all its tries, and an anchor
whose square misses the grid shrunk by 2 km has no try well inside it. A relax level whose
anchors all fail is passed over; the rules are computed try by try only for the tries their
anchor does not settle, and cells and shapely's tests only for the tries that passed them, a few
at a time and in order, until one fits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray

from firewatch.errors import FirewatchError
from firewatch.sim import draws
from firewatch.sim.tries import NearCell, NearSensor, Place, Places, Tries
from firewatch.sim.world import CAMERA_RANGE_KM, BoolArray, FloatArray, IntArray, SimGrid, World

PLACE_TRIES = 1000  # tries at each relax level
SPACING_KM = (8.0, 4.0)  # between fires, at relax levels 0 and 1
CAMERA_KM = CAMERA_RANGE_KM - 1  # relax 0: a camera within this distance
STATIC_KM = 6.0  # relax 0: this far from the static heat source
SENSOR_CLEAR_KM = 2.0  # relax 0: no sensor this close to `quiet` (but its own) or `remote` fires
SLACK_KM = 1e-6  # far more than rounding moves a try from where its anchor says
MAX_ANCHORS = 1000  # more sensors than this: their tries are tested one by one, not by anchor

NOWHERE: Place = (np.nan, np.nan, -1)
Made = tuple[Callable[[IntArray], Places], Callable[[int], Place]]  # many tries, or one


@dataclass
class Anchors:
    """The anchors of one kind of tries, and what they tell of their tries' rules: the tries
    of an anchor are within `radius` of it (and within the square of that half-side)."""

    xy: FloatArray
    radius: float
    # relax 0, rules other than spacing: all of an anchor's tries fail one, without (False) or
    # with (True) the sensor rule of `quiet` and `remote` fires; all pass the distance rules
    fail_0: dict[bool, BoolArray]
    pass_0: BoolArray
    fire: FloatArray  # to the nearest fire placed so far (inf: none yet)

    @classmethod
    def of(
        cls,
        tries: Tries,
        world: World,
        sensors: NDArray[np.object_],
        anchored: tuple[shapely.STRtree, BoolArray] | None = None,
    ) -> Anchors:
        """`sensors`: the sensors' points; `anchored`: a tree of the anchors' points and
        Anchors.outside_of, if known (a season's episodes share their cells)."""
        xy, r = tries.anchors, tries.radius + SLACK_KM
        x, y = xy[:, 0], xy[:, 1]
        cams = world.cameras.xy
        camera = np.full(len(xy), -np.inf)  # to the nearest camera (-inf: none, no rule)
        if len(cams):
            camera = np.hypot(x[:, None] - cams[:, 0], y[:, None] - cams[:, 1]).min(axis=1)
        tree, outside = anchored or (shapely.STRtree(shapely.points(xy)), None)
        if outside is None:
            outside = cls.outside_of(tries, world.grid)
        crowded = np.zeros(len(xy), dtype=bool)  # another sensor within 2 km of every try
        clear = SENSOR_CLEAR_KM - r - SLACK_KM  # a sensor this close to an anchor is that
        if len(sensors) and clear > 0:
            near, anchor = tree.query(sensors, "dwithin", clear)  # (the few sensors ask)
            crowded[anchor[(anchor != near) | (not tries.on_sensors)]] = True
        sx, sy = world.static_xy
        static = np.hypot(x - sx, y - sy)
        fail = (camera - r > CAMERA_KM) | (static + r < STATIC_KM) | outside
        fail_0 = {False: fail, True: fail | crowded}
        pass_0 = (camera + r <= CAMERA_KM) & (static - r >= STATIC_KM)
        return cls(xy, tries.radius, fail_0, pass_0, np.full(len(xy), np.inf))

    @staticmethod
    def outside_of(tries: Tries, grid: SimGrid) -> BoolArray:
        """Which anchors' squares miss the grid shrunk by 2 km: none of their tries is well
        inside it."""
        (x, y), r = tries.anchors.T, tries.radius + SLACK_KM
        square = shapely.box(x - r, y - r, x + r, y + r)
        outside: BoolArray = ~shapely.intersects(grid.inner, square)
        return outside

    def add_fire(self, x: float, y: float) -> None:
        self.fire = np.minimum(self.fire, np.hypot(self.xy[:, 0] - x, self.xy[:, 1] - y))

    def verdicts(self, level: int, kind: str) -> tuple[BoolArray, BoolArray]:
        """For each anchor: all its tries fail a rule of `level` for a fire of `kind`; all
        pass its distance rules (the cells and shapely's tests are made in any case)."""
        r = self.radius + SLACK_KM
        if level == 2:
            return np.zeros(len(self.xy), dtype=bool), np.ones(len(self.xy), dtype=bool)
        spacing = SPACING_KM[level]
        fail, ok = self.fire + r < spacing, self.fire - r >= spacing
        if level == 0:  # (a sensor within 2 km of every try: `quiet`'s other than its own)
            return fail | self.fail_0[kind in ("quiet", "remote")], ok & self.pass_0
        return fail, ok


@dataclass
class Placer:
    """The fires' places in one stream, one after another (each keeps clear of the earlier)."""

    world: World
    tree: shapely.STRtree | None  # over the sensors
    kinds: dict[str, tuple[Tries, Anchors | None]]  # (None: too many anchors to pay)
    anchors: list[Anchors]  # each kind of tries' once
    fires: FloatArray = field(default_factory=lambda: np.zeros((2, 0)))  # x, y placed so far

    @classmethod
    def of(cls, world: World) -> Placer:
        xy = world.sensors.xy
        near_cell, cells = _near_cell(world.grid)
        by_kind: dict[str, Tries] = {"cameras": near_cell, "remote": near_cell}
        if len(xy):
            by_kind["full"] = NearSensor(xy, (0.2, 0.6))
            by_kind["quiet"] = NearSensor(xy, (0.2, 0.5))
        else:
            by_kind["full"] = by_kind["quiet"] = near_cell
        points = shapely.points(xy)
        tree = shapely.STRtree(points) if len(xy) else None
        anchors = {id(near_cell): Anchors.of(near_cell, world, points, cells)}
        if len(xy) <= MAX_ANCHORS:
            for t in by_kind.values():
                if id(t) not in anchors:
                    anchors[id(t)] = Anchors.of(t, world, points)
        kinds = {kind: (t, anchors.get(id(t))) for kind, t in by_kind.items()}
        return cls(world, tree, kinds, list(anchors.values()))

    def place(self, kind: str, rng: np.random.Generator) -> tuple[float, float, int, int]:
        """A place for a fire of `kind`: (x, y, cell, the sensor beside it or -1)."""
        tries, anchors = self.kinds[kind]
        found = self._at_once(kind, tries, anchors, rng) or self._one_by_one(kind, tries, rng)
        x, y = found[0], found[1]
        self.fires = np.append(self.fires, [[x], [y]], axis=1)
        for each in self.anchors:
            each.add_fire(x, y)
        return found

    def _at_once(
        self, kind: str, tries: Tries, anchors: Anchors | None, rng: np.random.Generator
    ) -> tuple[float, float, int, int] | None:
        """All tries as arrays; None if draws.rounds cannot, or the real draw differs."""
        drawn = draws.rounds(rng, 3 * PLACE_TRIES, tries.bound)
        if drawn is None:
            return None

        def places(rows: IntArray) -> Places:
            return tries.at(drawn, rows)

        def place_of(row: int) -> Place:
            return tries.one(drawn, row)

        anchored = None if anchors is None else (anchors, drawn.ints)
        fit, cell, place = self._first_fitting(kind, len(drawn), (places, place_of), anchored)
        last = fit if fit >= 0 else len(drawn) - 1  # the try the loop would stop after
        x, y, sensor = place if fit >= 0 else [float(v[0]) for v in places(np.array([last]))]
        draws.seek(rng, drawn, last)
        real = tries.one_by_one(1, rng)  # the generator is then where the loop would leave it
        if (real[0][0], real[1][0], real[2][0]) != (x, y, sensor):
            rng.bit_generator.state = drawn.state  # not this numpy: one by one
            return None
        if fit < 0:
            raise FirewatchError("simulate: found no place for a fire inside the grid")
        return x, y, cell, int(sensor)

    def _one_by_one(
        self, kind: str, tries: Tries, rng: np.random.Generator
    ) -> tuple[float, float, int, int]:
        """The tries drawn by the loop itself, all of them (the fallback, many times slower)."""
        before = rng.bit_generator.state
        x, y, sensor = tries.one_by_one(3 * PLACE_TRIES, rng)
        made = (
            lambda r: (x[r], y[r], sensor[r]),
            lambda r: (float(x[r]), float(y[r]), int(sensor[r])),
        )
        fit, cell, _ = self._first_fitting(kind, len(x), made, None)
        if fit < 0:
            raise FirewatchError("simulate: found no place for a fire inside the grid")
        rng.bit_generator.state = before
        tries.one_by_one(fit + 1, rng)
        return float(x[fit]), float(y[fit]), cell, int(sensor[fit])

    def _first_fitting(
        self, kind: str, n: int, made: Made, anchored: tuple[Anchors, IntArray] | None
    ) -> tuple[int, int, Place]:
        """The first of `n` tries that meets the rules of its relax level, its cell and place;
        -1, -1: none. Relax 0: all rules; 1: 4 km from other fires; 2: in a cell.

        `made` makes the tries of the given rows, or of one; with `anchored` (the tries'
        anchors and the anchor of each try), the tries their anchor rules out are never made."""
        for level in range(3):
            rows = np.arange(level * PLACE_TRIES, min(n, (level + 1) * PLACE_TRIES))
            passes = np.zeros(len(rows), dtype=bool)  # known to meet the distance rules
            if anchored is not None:
                anchors, anchor = anchored
                fail, sure = anchors.verdicts(level, kind)
                if fail.all():
                    continue
                of_rows = anchor[rows]
                kept = ~fail[of_rows]
                rows, passes = rows[kept], sure[of_rows[kept]]
            found = self._first_of(kind, level, rows, passes, made)
            if found[0] >= 0:
                return found
        return -1, -1, NOWHERE

    def _first_of(
        self, kind: str, level: int, rows: IntArray, passes: BoolArray, made: Made
    ) -> tuple[int, int, Place]:
        """The first of `rows` (tries of one relax level, in order) that fits, its cell and
        place. The first alone, in Python numbers (two fires in three take it); then the
        distance rules (where `passes` does not say), then the cells and shapely's tests on
        the tries that passed them, a few at a time and in order."""
        if not len(rows):
            return -1, -1, NOWHERE
        places, place_of = made
        place = place_of(int(rows[0]))
        cell = self._fits(kind, level, place, bool(passes[0]))
        if cell >= 0:
            return int(rows[0]), cell, place
        start, batch = 1, 16
        while start < len(rows):
            some = rows[start : start + batch]
            x, y, sensor = places(some)
            ok = passes[start : start + batch].copy()
            unsure = np.flatnonzero(~ok)
            if unsure.size:
                ok[unsure] = self._exact(x[unsure], y[unsure], level)
            hit = np.flatnonzero(ok)
            if hit.size:
                cells = self.world.grid.locate_all(x[hit], y[hit])
                fits = cells >= 0
                if level == 0 and fits.any():
                    i = hit[fits]
                    fits[fits] = self._strict(kind, x[i], y[i], sensor[i])
                if fits.any():
                    k = int(fits.argmax())
                    j = hit[k]
                    return int(some[j]), int(cells[k]), (float(x[j]), float(y[j]), int(sensor[j]))
            start += batch
            batch *= 4
        return -1, -1, NOWHERE

    def _fits(self, kind: str, level: int, place: Place, sure: bool) -> int:
        """The rules of `_first_of` (_exact, locate_all, _strict) for one place, in Python
        numbers where they are the same numbers (shapely and np.hypot for the rest; a test
        holds them to it): its cell if it fits, else -1."""
        x, y, sensor = place
        if not sure:  # the distance rules
            if level < 2 and self.fires.size:
                spacing = SPACING_KM[level]
                if not nearest_one(x, y, self.fires, spacing) >= spacing:
                    return -1
            if level == 0:
                cams = self.world.cameras.xy
                if len(cams) and not nearest_one(x, y, cams.T, CAMERA_KM) <= CAMERA_KM:
                    return -1
                sx, sy = self.world.static_xy
                if not float(np.hypot(x - sx, y - sy)) >= STATIC_KM:
                    return -1
        cell = self.world.grid.locate(x, y)
        if cell is None:
            return -1
        if level == 0:  # the rules that ask shapely (_strict)
            if kind in ("quiet", "remote"):  # sensors within 2 km: exactly its own, or none
                near = []
                if self.tree is not None:
                    near = self.tree.query(shapely.Point(x, y), "dwithin", SENSOR_CLEAR_KM).tolist()
                if near != ([sensor] if kind == "quiet" else []):
                    return -1
            if not self.world.grid.well_inside(x, y):
                return -1
        return cell

    def _exact(self, x: FloatArray, y: FloatArray, level: int) -> BoolArray:
        """The distance rules of `level`, place by place."""
        ok = np.ones(len(x), dtype=bool)
        if level == 2:
            return ok
        if self.fires.size:
            fx, fy = self.fires
            spacing = SPACING_KM[level]
            ok = nearest(x, y, fx, fy, spacing) >= spacing
        if level == 0:
            todo = np.flatnonzero(ok)
            ok[todo] = self._in_view(x[todo], y[todo])
        return ok

    def _in_view(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """Rules of relax level 0: a camera within 7 km, the static site 6 km away or more."""
        ok = np.ones(len(x), dtype=bool)
        cams = self.world.cameras.xy
        if len(cams):
            ok &= nearest(x, y, cams[:, 0], cams[:, 1], CAMERA_KM) <= CAMERA_KM
        sx, sy = self.world.static_xy
        ok &= np.hypot(x - sx, y - sy) >= STATIC_KM
        return ok

    def _strict(self, kind: str, x: FloatArray, y: FloatArray, sensor: IntArray) -> BoolArray:
        """Rules of relax level 0 that ask shapely: the kind's sensors within 2 km, 2 km inside."""
        ok = np.ones(len(x), dtype=bool)
        if kind in ("quiet", "remote"):  # sensors within 2 km: none, or exactly the fire's own
            point, near = np.zeros((2, 0), dtype=np.int64)
            if self.tree is not None:
                point, near = self.tree.query(shapely.points(x, y), "dwithin", SENSOR_CLEAR_KM)
            count = np.bincount(point, minlength=len(x))
            own = np.bincount(point, weights=near == sensor[point], minlength=len(x))
            ok = count == 0 if kind == "remote" else (count == 1) & (own == 1)
        return ok & self.world.grid.well_inside_all(x, y)


@functools.lru_cache(maxsize=4)
def _near_cell(grid: SimGrid) -> tuple[NearCell, tuple[shapely.STRtree, BoolArray]]:
    """A grid's NearCell tries, a tree of their anchors' points and which of their squares
    miss its inner part: the same for every episode of a season."""
    high = np.flatnonzero([r == "high" for r in grid.risks])
    near_cell = NearCell(grid.centers, high if high.size else np.arange(len(grid.ids)))
    tree = shapely.STRtree(shapely.points(near_cell.anchors))
    return near_cell, (tree, Anchors.outside_of(near_cell, grid))


def nearest_one(x: float, y: float, points: FloatArray, edge: float) -> float:
    """`nearest` of one point to the (2, n) points: the same number."""
    dx, dy = x - points[0], y - points[1]
    distance = math.sqrt(float((dx * dx + dy * dy).min()))  # np.sqrt: both correctly rounded
    if abs(distance - edge) <= 1e-9 * edge:
        distance = float(np.hypot(dx, dy).min())
    return distance


def nearest(
    x: FloatArray, y: FloatArray, px: FloatArray, py: FloatArray, edge: float
) -> FloatArray:
    """The distance (km) from each point (x, y) to the nearest of the points (px, py).

    np.hypot where it is within a hair of `edge` (the rule's limit), elsewhere the square root
    of dx² + dy², about five times faster and only a few ulps off np.hypot: on the same side
    of `edge`, so rules compare alike."""
    dx = x[None, :] - px[:, None]  # (other points, points): the minimum runs along rows
    dy = y[None, :] - py[:, None]
    distance: FloatArray = np.sqrt((dx * dx + dy * dy).min(axis=0))
    close = np.abs(distance - edge) <= 1e-9 * edge
    if close.any():
        distance[close] = np.hypot(dx[:, close], dy[:, close]).min(axis=0)
    return distance
