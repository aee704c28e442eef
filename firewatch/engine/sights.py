"""Cameras placed by their lines of sight (issue #12): the tracker's window of recent sights.

A camera fire signal with a sight (camera_lat, camera_lon, bearing_deg) is placed when the tracker
takes it, in (event time, detection id) order, so a replay, a replay shuffled within the grace and
the Kafka workers place it alike (rules: `triangulation`):

- with the sights of other cameras of its region within `window` of it (the newest of each camera,
  newest first, at most MAX_CROSSING) that cross its line at the minimum angle or more, ahead of
  both cameras and in range (geo.sight.may_cross, a cheap test), geo.sight.best_fix: the
  crossing of the largest set of sights that agree, when this signal's own sight is one of them
  (`triangulated`). Two cameras
  that each see a different fire cross at a ghost, so a sight is not used for a crossing that
  contradicts what else is known of it: the range its record's own position gives (ahead of the
  camera: off by more than RANGE_SLACK_M and half that range), or the place of the incident it went
  to (a detection's or a crossing's: farther off than the merge radius and that place's
  uncertainty); such sights are left out and the crossing is made again;
- else on its own line of sight (`line_of_sight`): at the record's position moved onto the line
  when that position is ahead of the camera (a vendor's estimate of the range), else half-way
  along the stretch of the line within the camera's range that is in the grid cells of the
  signal's region (where a fire would matter), its uncertainty covering that stretch
  (`Placement.ranged` False: nothing is known along the line).

The place must be in a grid cell of the signal's region (a region's incidents live on one stream
partition); else the signal keeps its record's place (`detection`). Which incident a crossing or a
line of sight joins is the tracker's business (incidents.py); this window remembers which incident
each of its signals went to (`own`), so a later crossing joins that incident.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firewatch.engine.signals import Signal
from firewatch.geo.sight import (
    K95,
    MIN_UNCERTAINTY_M,
    SAME_SITE_M,
    Aim,
    Fix,
    Method,
    Sight,
    ahead,
    best_fix,
    line_of_sight,
)
from firewatch.model import LocatedBy
from firewatch.rules.model import TriangulationRule

MAX_CROSSING = 15  # other cameras' sights offered to one crossing (the newest of each camera)
MAX_WINDOW = 2_000  # sights remembered at most (the oldest go first), whatever the window
RANGE_SLACK_M = 1_000.0  # a crossing agrees with a record's own range within this, or half of it
_RETRIES = 3  # crossings made again without the sights that contradicted the last one

LINE_STEP_M = 250.0  # a line of sight is sampled this often for the stretch in the region
HALF_WAYS = 4_096  # lines of sight whose place half-way along the stretch is kept (_half_way)
# (lat, lon) arrays -> grid cell index of each point, -1 outside every cell
Locate = Callable[[np.ndarray, np.ndarray], np.ndarray]
SameRegion = Callable[[int, int], bool]  # two cells in one region (incidents.region_level)
# an open incident's place, as (lat, lon, how far from it (m) is still it), when it is known
# better than by a line of sight; else None
Where = Callable[[str], tuple[float, float, float] | None]
# a remembered camera signal: placed, the incident it went to, its record's own range (m)
Seen = tuple[Signal, str | None, float | None]
# a camera signal of the window and its sight's Aim (None: it has no sight), worked out once
# for the many crossings it is offered to
Sighted = tuple[Signal, Aim | None]


@dataclass(frozen=True, slots=True)
class Placement:
    signal: Signal  # placed: lat, lon, cell, located_by, uncertainty_m
    crossed: tuple[Signal, ...] = ()  # the other signals whose sights the crossing used
    ranged: bool = True  # False: on a line of sight, with nothing known along it
    range_m: float | None = None  # how far along its line its record's own position is


def _aim(s: Signal) -> Aim | None:
    return None if s.sight is None else Aim.of(s.sight)


def line_cells(
    sight: Sight, range_m: float, locate: Locate
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The camera's line of sight sampled every LINE_STEP_M within its range (capped by
    `range_m`): how far along, where (lat, lon) and in which cell (-1: none) each sample is."""
    reach = min(sight.range_m or math.inf, range_m)
    along = np.arange(LINE_STEP_M, reach + 1.0, LINE_STEP_M)
    lat, lon = ahead(sight, along)
    return along, lat, lon, locate(np.asarray(lat), np.asarray(lon))


def cell_on_line(sight: Sight, range_m: float, locate: Locate) -> int:
    """The cell half-way along the stretch of the camera's line of sight that is in the grid (of
    its samples in a cell, the middle one), -1 when none is: where a camera that stands outside
    the grid is routed (Engine.prepare); the tracker then places it in that cell's region."""
    _, _, _, cells = line_cells(sight, range_m, locate)
    inside = np.flatnonzero(cells >= 0)
    return int(cells[inside[len(inside) // 2]]) if inside.size else -1


class Sights:
    def __init__(
        self, rule: TriangulationRule, locate: Locate, same_region: SameRegion, where: Where
    ) -> None:
        self.rule = rule
        self._locate = locate
        self._same_region = same_region
        self._where = where
        self._window_s = rule.window.total_seconds()
        self.range_m = rule.max_range_km * 1000.0
        self.sigma = math.radians(rule.bearing_error_deg)
        # may_cross's slack below best_fix's exact test: a tenth more range, 0.9 of the angle
        self._angle = math.degrees(math.asin(0.9 * math.sin(math.radians(rule.min_angle_deg))))
        self._reach = 1.1 * self.range_m
        self._min_sin = math.sin(math.radians(self._angle))  # as may_cross works it out
        self._window: deque[Sighted] = deque()  # placed camera signals with a sight, by arrival
        self._owner: dict[str, str] = {}  # signal id -> the incident it went to
        # signal id -> how far along its line its record's own position was (None: not ahead)
        self._range: dict[str, float | None] = {}
        self._half_way_of = functools.lru_cache(maxsize=HALF_WAYS)(self._half_way)

    # -- state ------------------------------------------------------------------------------
    def state(self) -> list[Seen]:
        """The window in arrival order, each signal with the incident it went to (or None) and
        its record's own range (or None)."""
        return [(s, self._owner.get(s.id), self._range.get(s.id)) for s, _ in self._window]

    def load(self, window: list[Seen]) -> None:
        self._window = deque((s, _aim(s)) for s, _, _ in window)
        self._owner = {s.id: iid for s, iid, _ in window if iid is not None}
        self._range = {s.id: r for s, _, r in window}

    # -- placing ----------------------------------------------------------------------------
    def place(self, s: Signal) -> Placement:
        """Where `s` is (see the module): `s` itself when it has no sight or the rules disable
        triangulation. Then remember it (`add`) once the tracker has taken it."""
        sight = s.sight
        if sight is None or not self.rule.enabled:
            return Placement(s)
        self.expire(s.t)
        aim = Aim.of(sight)
        # the sights that may cross this one (geo.sight.may_cross), on aims worked out once
        others = [
            (o, o_aim)
            for o, o_aim in self._crossing(s)
            if o_aim is not None and aim.may_cross(o_aim, self._reach, self._min_sin)
        ]
        distance = self._distance(s, aim)
        for _ in range(_RETRIES + 1):
            if not others:
                fix = self._line(s, distance)  # what best_fix would give, at a fraction of it
                break
            fix = best_fix(
                [sight, *(o.sight for o, _ in others if o.sight is not None)],
                max_range_m=self.range_m,
                min_angle_deg=self.rule.min_angle_deg,
                bearing_error_deg=self.rule.bearing_error_deg,
                distance_m=distance,
            )
            if fix is None or fix.method is Method.LINE_OF_SIGHT:
                break
            if 0 not in fix.sights or not self._agrees(s, aim, fix, distance):  # a crossing
                fix = self._line(s, distance)  # that is not this sight's smoke
                break
            wrong = {
                k - 1
                for k in fix.sights
                if k > 0
                and not self._agrees(*others[k - 1], fix, self._range.get(others[k - 1][0].id))
            }
            if not wrong:
                break
            others = [o for k, o in enumerate(others) if k not in wrong]
        else:
            fix = self._line(s, distance)  # still contradicted
        if fix is None or 0 not in fix.sights:  # its own sight is unusable (a pole, say)
            return Placement(s, range_m=distance)
        crossed = tuple(others[k - 1][0] for k in fix.sights if k > 0)
        if fix.method is Method.LINE_OF_SIGHT and distance is None:
            placed = self._in_region(s, sight)
        else:
            placed = self._at(s, fix)
        if placed is None:
            return Placement(s, range_m=distance)
        return Placement(placed, crossed, bool(crossed) or distance is not None, distance)

    def add(self, s: Signal, range_m: float | None) -> None:
        """Remember a placed camera signal for later crossings, with its record's own range
        (Placement.range_m); one without a sight: nothing."""
        if s.sight is None or not self.rule.enabled:
            return
        self._window.append((s, _aim(s)))
        self._range[s.id] = range_m
        while len(self._window) > MAX_WINDOW:
            self._forget(self._window.popleft()[0])

    def own(self, s: Signal, incident_id: str) -> None:
        """`s` went to the incident (opened it or joined it): while it is in the window."""
        if s.id in self._range:
            self._owner[s.id] = incident_id

    def owners(self, signals: tuple[Signal, ...]) -> list[str]:
        """The incidents these signals went to, in order, once each."""
        found = (self._owner.get(s.id) for s in signals)
        return list(dict.fromkeys(iid for iid in found if iid is not None))

    def expire(self, t: float) -> None:
        """Forget sights older than event time `t` less the window."""
        horizon = t - self._window_s
        while self._window and self._window[0][0].t < horizon:
            self._forget(self._window.popleft()[0])

    def _forget(self, s: Signal) -> None:
        self._owner.pop(s.id, None)
        self._range.pop(s.id, None)

    def _crossing(self, s: Signal) -> list[Sighted]:
        """The newest sight of each other camera of the region within the window of `s`."""
        found: dict[str, Sighted] = {}
        device, t, window_s, same_region = s.device, s.t, self._window_s, self._same_region
        for seen in reversed(self._window):
            o = seen[0]
            if o.device == device or o.device in found:
                continue
            if abs(o.t - t) <= window_s and o.id != s.id and same_region(o.cell, s.cell):
                found[o.device] = seen
                if len(found) >= MAX_CROSSING:
                    break
        return list(found.values())

    def _agrees(self, s: Signal, aim: Aim, fix: Fix, distance: float | None) -> bool:
        """Whether the crossing `fix` may be where the smoke `s` saw is (see the module):
        `aim` is its sight's, `distance` how far along its line its record's own position was
        (None: not ahead)."""
        if distance is not None:
            along, _ = aim.along_off(fix.lat, fix.lon)
            if abs(along - distance) > max(RANGE_SLACK_M, distance / 2):
                return False
        iid = self._owner.get(s.id)
        known = None if iid is None else self._where(iid)
        if known is None:
            return True
        lat, lon, reach_m = known
        along, off = aim.along_off(lat, lon)  # the place, from this camera
        fix_along, fix_off = aim.along_off(fix.lat, fix.lon)
        return math.hypot(along - fix_along, off - fix_off) <= reach_m

    def _distance(self, s: Signal, aim: Aim) -> float | None:
        """How far along its line the record's own position puts the fire: None when that
        position is the camera's (within a site's size) or not ahead of it."""
        along, off = aim.along_off(s.lat, s.lon)
        if math.hypot(along, off) <= SAME_SITE_M or along <= 0:
            return None
        return along

    def _line(self, s: Signal, distance: float | None) -> Fix | None:
        assert s.sight is not None
        return line_of_sight(
            s.sight,
            max_range_m=self.range_m,
            bearing_error_deg=self.rule.bearing_error_deg,
            distance_m=distance,
        )

    def _in_region(self, s: Signal, sight: Sight) -> Signal | None:
        """`s` on its line of sight, half-way along the stretch of it in its region's cells
        (sampled every LINE_STEP_M within the camera's range), or None when none of it is."""
        place = self._half_way_of(sight, s.cell)
        if place is None:
            return None
        lat, lon, cell, uncertainty_m = place
        return dataclasses.replace(
            s,
            lat=lat,
            lon=lon,
            cell=cell,
            located_by=LocatedBy.LINE_OF_SIGHT,
            uncertainty_m=uncertainty_m,
        )

    def _half_way(self, sight: Sight, cell: int) -> tuple[float, float, int, float] | None:
        """Where `_in_region` places a signal of grid cell `cell` on this line of sight: lat,
        lon, cell and uncertainty (m). Kept for the last HALF_WAYS lines (`_half_way_of`): a
        camera that watches a fire sends the same bearing again and again (to the tenth of a
        degree it reports), and locating the line's samples is most of the work."""
        along_m, lat, lon, cells = line_cells(sight, self.range_m, self._locate)
        along = along_m.tolist()
        inside = [k for k, c in enumerate(cells.tolist()) if c >= 0 and self._same_region(c, cell)]
        if not inside:
            return None
        lo, hi = along[inside[0]], along[inside[-1]]
        middle = (lo + hi) / 2
        k = min(inside, key=lambda k: abs(along[k] - middle))  # the sample nearest half-way
        d = along[k]
        radius = math.hypot(max(d - lo, hi - d) + LINE_STEP_M, K95 * self.sigma * hi)
        uncertainty_m = round(max(radius, MIN_UNCERTAINTY_M), 1)
        return round(float(lat[k]), 7), round(float(lon[k]), 7), int(cells[k]), uncertainty_m

    def _at(self, s: Signal, fix: Fix) -> Signal | None:
        cell = int(self._locate(np.array([fix.lat]), np.array([fix.lon]))[0])
        if cell < 0 or not self._same_region(cell, s.cell):
            return None
        return dataclasses.replace(
            s,
            lat=round(fix.lat, 7),
            lon=round(fix.lon, 7),
            cell=cell,
            located_by=LocatedBy(fix.method.value),
            uncertainty_m=round(max(fix.uncertainty_m, MIN_UNCERTAINTY_M), 1),
        )

    def ray_reach(self, along_m: float, merge_m: float) -> float:
        """How far off the line of sight a point `along_m` along it may be and still be on it: the
        merge radius and three bearing errors there."""
        return merge_m + 3.0 * self.sigma * max(along_m, MIN_UNCERTAINTY_M)

    def on_line_uncertainty(self, along_m: float, off_m: float) -> float:
        """The uncertainty of a line of sight placed on a known fire `off_m` off it."""
        return abs(off_m) + K95 * self.sigma * max(along_m, MIN_UNCERTAINTY_M)
