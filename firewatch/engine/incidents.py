"""Incidents: fold fire signals into incidents, in event time.

The tracker sees signals one at a time in (event time, detection id) order; the engine's grace
buffer gives it that order. A signal
  - joins the nearest open incident one of whose last `track_points` detections is within the
    merge radius (widened by `satellite_pixel_factor` x the pixel size of satellite detections on
    either side) and whose inactivity deadline (last detection + inactivity) it does not pass: an
    incident follows a fire that spreads, with bounded memory per incident;
  - else, if strong, opens an incident (rule `<source>.confident`);
  - else, a suspect, opens one when corroborated by a pending suspect of the same device within the
    source's repeat window (rule `<source>.repeat`) or of another device within the corroboration
    radius and window (rule `<source>.corroborated`); otherwise it waits as a pending suspect.
Pending suspects near a new incident join it. An incident's id is derived from its first detection
(the earliest in (time, id) order) and its place (`lat`, `lon`, grid cell) is that detection's
until a better one joins (`Place`: a camera's line of sight gives way to a crossing of several
cameras' lines or to a detection's own place; a crossing to a more certain one); it also
reports where the fire is now (`current_lat`, `current_lon`: the centroid of its last
`track_points` detections), its extent (the bounding box of all its detections, and its area) and
the teams whose cells its detections fell in, in the order reached. `updated` is emitted only when
the severity rises (a spreading fire adds points: severity.span_km), a new source type joins, or
the fire reaches another team's cell, or the incident is placed better; `closed` when the
event-time watermark passes the inactivity deadline, with observed_at = the deadline.

Cameras that send their position and the smoke's bearing are placed by their lines of sight before
they are taken (sights.py). A crossing joins the incident of the signals whose sights it crossed
(pending suspects among them corroborate it and move to the crossing); a line of sight with nothing
known along it first joins the open incident with a detection closest to its line (within the merge
radius and three bearing errors), placed at that detection.

Nothing is merged or corroborated across regions (`incidents.region_level`, default the district):
a fire on a district boundary is one incident per district, each dispatched by its own district's
teams. This is also what lets the stream workers keep incident state per region.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

from firewatch.engine.severity import severity_of
from firewatch.engine.sights import Locate, Placement, Seen, Sights
from firewatch.engine.signals import Signal, Strength
from firewatch.geo.grid import Cell
from firewatch.geo.sight import Aim, corridor
from firewatch.model import (
    SOURCES,
    EventKind,
    IncidentEvent,
    LocatedBy,
    Severity,
    Source,
    utc_datetime,
)
from firewatch.rules.model import RuleSet

_BUCKET_DEG = 0.02
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON = 111.320
TEAMS_CAP = 50  # teams listed per incident (the first reached)
REFINED = 0.75  # a crossing moves an incident placed by one at most this uncertain (and updates)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact to well under 1% at the few-km scale of merging."""
    dy = (lat2 - lat1) * _KM_PER_DEG_LAT
    dx = (lon2 - lon1) * _KM_PER_DEG_LON * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy)


def incident_id(first_detection_id: str) -> str:
    return "inc-" + hashlib.blake2b(first_detection_id.encode(), digest_size=8).hexdigest()


@dataclass(slots=True, eq=False)
class Point:
    """Where and when one of an incident's recent detections was (what merging reads of it);
    compared by identity."""

    t: float
    lat: float
    lon: float
    pixel_km: float
    cell: int

    @classmethod
    def of(cls, s: Signal) -> Point:
        return cls(s.t, s.lat, s.lon, s.pixel_km, s.cell)


@dataclass(slots=True)
class Place:
    """Where an incident is: a grid cell and a position in it, how they were found and the radius
    (m) that holds the fire with about 95% confidence (None: as a device reported it)."""

    lat: float
    lon: float
    cell: int
    located_by: LocatedBy = LocatedBy.DETECTION
    uncertainty_m: float | None = None

    @classmethod
    def of(cls, s: Signal) -> Place:
        return cls(s.lat, s.lon, s.cell, s.located_by, s.uncertainty_m)

    def gives_way_to(self, s: Signal) -> bool:
        """Whether `s` places the incident better: a line of sight gives way to a crossing or a
        detection's own place, a crossing to a clearly more certain one (REFINED); a detection's
        place stays. Only a place that agrees with this one (within the two uncertainties: the
        95% circles meet) moves it: a crossing of sights of two different fires (a ghost) can
        state a small uncertainty far from where the incident is, and a signal that joined the
        incident on its way there must not carry it off."""
        if self.located_by is LocatedBy.LINE_OF_SIGHT:
            better = s.located_by is not LocatedBy.LINE_OF_SIGHT
        elif self.located_by is LocatedBy.TRIANGULATED and s.located_by is LocatedBy.TRIANGULATED:
            better = (s.uncertainty_m or 0.0) <= REFINED * (self.uncertainty_m or 0.0)
        else:
            return False
        reach_km = ((self.uncertainty_m or 0.0) + (s.uncertainty_m or 0.0)) / 1000
        return better and distance_km(self.lat, self.lon, s.lat, s.lon) <= reach_km


@dataclass(slots=True)
class Incident:
    id: str
    anchor: Signal  # the first detection: its id (the incident's) and time
    rule: str
    first_seen: float
    last_seen: float
    counts: dict[Source, int]
    place: Place  # where it is (the first detection's place until a better one)
    detections: int = 0
    max_frp: float = 0.0
    flame: bool = False
    evidence: list[str] = field(default_factory=list)
    severity: Severity = Severity.LOW
    seq: int = 0  # events emitted so far: the event id is "<incident id>/<seq>"
    recent: deque[Point] = field(default_factory=deque)  # its last track_points detections
    extent: list[float] = field(default_factory=list)  # [west, south, east, north] of all
    teams: list[str] = field(default_factory=list)  # of the cells reached, in order (capped)

    @property
    def area_km2(self) -> float:
        """Area of the bounding box of its detections."""
        width, height = self._box_km()
        return width * height

    @property
    def span_km(self) -> float:
        """Diagonal of the bounding box of its detections: how far the fire has spread."""
        return math.hypot(*self._box_km())

    def _box_km(self) -> tuple[float, float]:
        if not self.extent:
            return 0.0, 0.0
        west, south, east, north = self.extent
        cos = math.cos(math.radians((south + north) / 2))
        return (east - west) * _KM_PER_DEG_LON * cos, (north - south) * _KM_PER_DEG_LAT

    @property
    def position(self) -> tuple[float, float]:
        """Where the fire is now: the centroid (lat, lon) of its last detections."""
        if not self.recent:
            return self.place.lat, self.place.lon
        n = len(self.recent)
        return sum(p.lat for p in self.recent) / n, sum(p.lon for p in self.recent) / n


@dataclass(slots=True)
class TrackerState:
    """What the tracker carries from one signal to the next (see firewatch.engine.state).

    The search structures (anchor buckets, the deadline heap, pending suspects by place and by
    device) are not part of it: `Tracker.load_state` rebuilds them from these lists. The lists
    share objects with a live tracker, so encode a state before the tracker moves on.
    """

    open: list[Incident]  # by incident id
    max_pixel: float  # widens the anchor search; it only grows, so it is kept, not recomputed
    pending: list[Signal]  # suspects waiting for corroboration, in arrival (expiry) order
    suspects_expired: int
    # camera signals with a sight, in arrival order, with the incident each went to and their
    # records' own ranges (sights.py)
    sights: list[Seen] = field(default_factory=list)


class _Placed(Protocol):
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...


T = TypeVar("T", bound=_Placed)


class _Buckets(Generic[T]):
    """Items on a 0.02-degree lat/lon grid (about 2 km: the merge radius), for "what is within
    r km of here"."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], list[T]] = {}

    @staticmethod
    def key(lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / _BUCKET_DEG), math.floor(lon / _BUCKET_DEG)

    def add(self, item: T) -> None:
        self._cells.setdefault(self.key(item.lat, item.lon), []).append(item)

    def remove(self, item: T) -> None:
        k = self.key(item.lat, item.lon)
        items = self._cells[k]
        items.remove(item)
        if not items:
            del self._cells[k]

    def near(self, lat: float, lon: float, radius_km: float) -> list[T]:
        ky, kx = self.key(lat, lon)
        dy = math.ceil(radius_km / _KM_PER_DEG_LAT / _BUCKET_DEG)
        cos = max(math.cos(math.radians(lat)), 1e-6)
        dx = math.ceil(radius_km / (_KM_PER_DEG_LON * cos) / _BUCKET_DEG)
        return self._within(ky - dy, kx - dx, ky + dy, kx + dx)

    def box(self, south: float, west: float, north: float, east: float) -> list[T]:
        """The items whose buckets meet this lat/lon box (all items inside it among them)."""
        (y0, x0), (y1, x1) = self.key(south, west), self.key(north, east)
        return self._within(y0, x0, y1, x1)

    def _within(self, y0: int, x0: int, y1: int, x1: int) -> list[T]:
        """The items of the buckets from (y0, x0) to (y1, x1): each bucket of the range looked
        up, or, when the range has more buckets than hold items (a wide search: a suspect's
        reach allows for the largest satellite pixel), each bucket that holds items tested.
        A list, each bucket's items added at once: a search finds dozens of points, and a
        generator paid a step for each."""
        found: list[T] = []
        if (y1 - y0 + 1) * (x1 - x0 + 1) > len(self._cells):
            for (y, x), items in self._cells.items():
                if y0 <= y <= y1 and x0 <= x <= x1:
                    found += items
            return found
        cells = self._cells
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                bucket = cells.get((y, x))
                if bucket:
                    found += bucket
        return found


class Tracker:
    def __init__(
        self,
        rules: RuleSet,
        cells: list[Cell],
        locate: Locate,
        masked: Callable[[Signal], bool] = lambda s: False,
    ) -> None:
        """`locate`: the grid cell of points (lat, lon arrays), -1 outside: where a camera's
        sights place a fire; `masked`: whether a suppression mask covers a signal where its
        sights placed it (the engine's masks, which may change between signals)."""
        self.rules = rules
        self.cells = cells
        inc = rules.incidents
        self._radius = inc.merge_radius_km
        self._pixel_factor = inc.satellite_pixel_factor
        self._inactivity = inc.inactivity.total_seconds()
        self._corr_radius = rules.corroboration.radius_km
        self._corr_window = rules.corroboration.window.total_seconds()
        self._repeat = {
            Source.SENSOR: rules.sources.sensor.repeat_window.total_seconds(),
            Source.CAMERA: rules.sources.camera.repeat_window.total_seconds(),
        }
        self._suspect_ttl = max(self._corr_window, *self._repeat.values())
        level = inc.region_level
        self._region = [getattr(c, level) for c in cells] if level else None
        self._sights = Sights(rules.triangulation, locate, self._same_cells, self._where)
        self._masked = masked
        self._track = inc.track_points
        self.open: dict[str, Incident] = {}
        self._points: _Buckets[Point] = _Buckets()  # the recent detections of open incidents
        self._point_owner: dict[Point, Incident] = {}
        self._max_pixel = 0.0  # largest pixel of a tracked detection so far (search radius)
        self._deadlines: list[tuple[float, str]] = []  # lazy heap of (deadline, incident id)
        self._pending: _Buckets[Signal] = _Buckets()  # suspects waiting for corroboration
        self._pending_by_device: dict[str, deque[Signal]] = {}
        self._pending_order: deque[Signal] = deque()  # by time, for expiry
        self.suspects_expired = 0

    # -- state (snapshots: firewatch.engine.state) ---------------------------------------------
    def state(self) -> TrackerState:
        return TrackerState(
            open=[self.open[iid] for iid in sorted(self.open)],
            max_pixel=self._max_pixel,
            pending=list(self._pending_order),
            suspects_expired=self.suspects_expired,
            sights=self._sights.state(),
        )

    def load_state(self, state: TrackerState) -> None:
        """Replace everything this tracker carries by `state`, rebuilding the search structures.

        The deadline heap gets one entry per open incident, at its current deadline: the live
        heap's entry may be at an earlier one (close_before moves it on when it falls due), and
        may outlive its incident (close_before skips it), so this changes nothing but timing.
        """
        self.open = {}
        self._points = _Buckets()
        self._point_owner = {}
        for inc in state.open:
            self.open[inc.id] = inc
            for p in inc.recent:
                self._points.add(p)
                self._point_owner[p] = inc
        self._max_pixel = state.max_pixel
        self._deadlines = sorted((i.last_seen + self._inactivity, i.id) for i in state.open)
        self._pending = _Buckets()
        self._pending_by_device = {}
        self._pending_order = deque()
        for s in state.pending:
            self._add_pending(s)
        self.suspects_expired = state.suspects_expired
        self._sights.load(state.sights)

    def limit_time(self, bound: float) -> list[str]:
        """Repair state holding event time after `bound` (epoch s; see Engine.limit_time): drop
        pending suspects after it and open incidents first detected after it (their `opened`
        events are out: their dispatch orders stay open for the teams to close), and pull back
        to it the last detection of an incident a later detection joined (it closes after the
        inactivity window from there). Says what it changed, in phrases; [] when nothing."""
        state = self.state()
        ahead = [i for i in state.open if i.anchor.t > bound]
        joined = [i for i in state.open if i.anchor.t <= bound < i.last_seen]
        pending = [s for s in state.pending if s.t <= bound]
        sights = [seen for seen in state.sights if seen[0].t <= bound]
        if not (
            ahead or joined or len(pending) < len(state.pending) or len(sights) < len(state.sights)
        ):
            return []
        for inc in joined:
            inc.last_seen = bound  # first_seen <= anchor.t <= bound
            # its detections after the limit are no longer followed (the extent stays)
            inc.recent = deque(p for p in inc.recent if p.t <= bound) or deque(
                [Point.of(inc.anchor)]
            )
        kept = [i for i in state.open if i.anchor.t <= bound]
        self.load_state(
            TrackerState(kept, state.max_pixel, pending, state.suspects_expired, sights)
        )
        notes = [f"incident {i.id} (first detection after the limit) dropped" for i in ahead]
        notes += [f"incident {i.id}: last detection pulled back to the limit" for i in joined]
        if len(pending) < len(state.pending):
            notes.append(f"{len(state.pending) - len(pending)} pending suspects dropped")
        if len(sights) < len(state.sights):
            notes.append(f"{len(state.sights) - len(sights)} camera sights dropped")
        return notes

    # -- the two entry points -------------------------------------------------------------
    def close_before(self, t: float) -> list[IncidentEvent]:
        """Close every open incident whose inactivity deadline is before event time `t`."""
        events = []
        while self._deadlines and self._deadlines[0][0] < t:
            deadline, iid = heapq.heappop(self._deadlines)
            inc = self.open.get(iid)
            if inc is None:
                continue  # closed already
            if inc.last_seen + self._inactivity != deadline:  # a later detection joined it
                self._push_deadline(inc)
                continue
            events.append(self._emit(inc, EventKind.CLOSED, deadline))
            del self.open[iid]
            for p in inc.recent:
                self._points.remove(p)
                del self._point_owner[p]
        self._expire_suspects(t)
        self._sights.expire(t)
        return events

    def step(self, s: Signal) -> list[IncidentEvent]:
        """Process one signal (call close_before(s.t) first)."""
        placement = self._sights.place(s)
        s = placement.signal
        if s.located_by is not LocatedBy.DETECTION and self._masked(s):
            return []  # a mask covers where its sights placed it: dropped, not remembered
        target = self._crossed_incident(placement)
        if target is None and not placement.ranged:
            target, s = self._on_line(s)
        self._sights.add(s, placement.range_m)
        if target is None:
            target = self._nearest_open(s)
        if target is not None:
            return self._join(target, s)
        crossed = self._pending_of(placement.crossed)
        if s.strength is Strength.STRONG:
            nearby = self._nearby_pending(s) + crossed
            return self._open_with(s, f"{s.source}.confident", nearby, crossed)
        repeat = self._repeats(s)
        if repeat:
            nearby = repeat + self._nearby_pending(s) + crossed
            return self._open_with(s, f"{s.source}.repeat", nearby, crossed)
        nearby = self._nearby_pending(s) + crossed
        if any(p.device != s.device for p in nearby):
            return self._open_with(s, f"{s.source}.corroborated", nearby, crossed)
        self._add_pending(s)
        return []

    # -- cameras placed by their sights (sights.py) -------------------------------------------
    def _crossed_incident(self, placement: Placement) -> Incident | None:
        """The open incident (of the earliest crossed signal that went to one) whose camera
        sights this signal's crossing used."""
        for iid in self._sights.owners(placement.crossed):
            inc = self.open.get(iid)
            if inc is not None and placement.signal.t <= inc.last_seen + self._inactivity:
                return inc
        return None

    def _on_line(self, s: Signal) -> tuple[Incident | None, Signal]:
        """A line of sight with nothing known along it: the open incident with a detection
        nearest its line (least bearing errors off it; ties: by incident id), within the merge
        radius and three bearing errors, ahead of the camera and in its range; and `s` placed at
        that detection. Incidents placed by a line of sight themselves are not candidates (their
        place is as uncertain)."""
        sight = s.sight
        assert sight is not None  # placed on its line of sight
        aim = Aim.of(sight)
        reach = min(sight.range_m or math.inf, self._sights.range_m)
        merge_m = self._radius * 1000.0
        best: tuple[tuple[float, str], Incident, Point, float, float] | None = None
        widest = self._sights.ray_reach(reach, merge_m)  # ray_reach grows along the line
        # most points of the corridor's box are off the line: that is tested first
        for p in self._points.box(*corridor(sight, reach, widest)):
            along, off = aim.along_off(p.lat, p.lon)
            if not 0 < along <= reach or abs(off) > widest:
                continue
            if abs(off) > self._sights.ray_reach(along, merge_m):
                continue
            inc = self._point_owner[p]
            if (
                inc.place.located_by is LocatedBy.LINE_OF_SIGHT
                or s.t > inc.last_seen + self._inactivity
                or not self._same_region(s, p)
            ):
                continue
            key = (abs(off) / max(along, 1.0), inc.id)
            if best is None or key < best[0]:
                best = (key, inc, p, along, off)
        if best is None:
            return None, s
        _, inc, p, along, off = best
        uncertainty = round(self._sights.on_line_uncertainty(along, off), 1)
        return inc, replace(s, lat=p.lat, lon=p.lon, cell=p.cell, uncertainty_m=uncertainty)

    def _where(self, incident_id: str) -> tuple[float, float, float] | None:
        """An open incident's place and how far from it (m) is still it (the merge radius and
        the place's uncertainty), unless it is placed by a line of sight (sights.py)."""
        inc = self.open.get(incident_id)
        if inc is None or inc.place.located_by is LocatedBy.LINE_OF_SIGHT:
            return None
        place = inc.place
        return place.lat, place.lon, self._radius * 1000.0 + (place.uncertainty_m or 0.0)

    def _pending_of(self, signals: tuple[Signal, ...]) -> list[Signal]:
        """Those of `signals` that are pending suspects (by id: a restored window holds copies)."""
        return [
            p for s in signals for p in self._pending_by_device.get(s.device, ()) if p.id == s.id
        ]

    # -- joining and opening ------------------------------------------------------------------
    def _reach(self, a: Signal, b_pixel: float, base: float) -> float:
        return base + self._pixel_factor * (a.pixel_km + b_pixel)

    def _nearest_open(self, s: Signal) -> Incident | None:
        """The open incident with a recent detection nearest `s` within reach (ties: by id).
        Most points of the buckets searched are out of reach north or south of `s`: that is
        tested first (distance_km is never less than its north-south part)."""
        best: tuple[float, str] | None = None
        found = None
        region = self._region  # (_same_region, for each point)
        home = None if region is None else region[s.cell]
        here = self._reach(s, 0.0, self._radius)  # to a point without a pixel: all but satellites'
        for p in self._points.near(s.lat, s.lon, self._reach(s, self._max_pixel, self._radius)):
            reach = here if p.pixel_km == 0.0 else self._reach(s, p.pixel_km, self._radius)
            if abs(p.lat - s.lat) * _KM_PER_DEG_LAT > reach:
                continue
            inc = self._point_owner[p]
            if s.t > inc.last_seen + self._inactivity or (
                region is not None and region[p.cell] != home
            ):
                continue
            d = distance_km(s.lat, s.lon, p.lat, p.lon)
            if d <= reach and (best is None or (d, inc.id) < best):
                best, found = (d, inc.id), inc
        return found

    def _join(self, inc: Incident, s: Signal) -> list[IncidentEvent]:
        before_sources = {k for k, v in inc.counts.items() if v}
        before_rank = inc.severity.rank
        before_teams = len(inc.teams)
        moved = inc.place.gives_way_to(s)
        if moved:
            self._move(inc, s)
        self._absorb(inc, s)  # its heap entry stays: close_before moves it on when it is due
        inc.severity = severity_of(inc, self.rules.severity, self.cells[inc.place.cell])
        if (
            inc.severity.rank > before_rank
            or s.source not in before_sources
            or len(inc.teams) > before_teams
            or moved
        ):
            return [self._emit(inc, EventKind.UPDATED, s.t)]
        return []

    def _move(self, inc: Incident, s: Signal) -> None:
        """Place the incident where `s` is. Its detections placed by a line of sight were as
        uncertain as its place: they are forgotten (recent points and extent start again)."""
        if inc.place.located_by is LocatedBy.LINE_OF_SIGHT:
            for p in inc.recent:
                self._points.remove(p)
                del self._point_owner[p]
            inc.recent.clear()
            inc.extent = []
        inc.place = Place.of(s)

    def _open_with(
        self, s: Signal, rule: str, others: list[Signal], crossed: list[Signal] | None = None
    ) -> list[IncidentEvent]:
        """Open an incident with `s` and the pending suspects `others` (`crossed`: those of them
        whose sights the crossing that placed `s` used: they are where `s` is)."""
        members = sorted({m.id: m for m in [*others, s]}.values(), key=lambda m: (m.t, m.id))
        for m in members:
            if m is not s:
                self._drop_pending(m)
        moved = {c.id for c in crossed or ()}
        members = [
            replace(
                m,
                lat=s.lat,
                lon=s.lon,
                cell=s.cell,
                located_by=s.located_by,
                uncertainty_m=s.uncertainty_m,
            )
            if m.id in moved
            else m
            for m in members
        ]
        anchor = members[0]
        place = min((Place.of(m) for m in members), key=_place_rank)
        inc = Incident(
            id=incident_id(anchor.id),
            anchor=anchor,
            rule=rule,
            first_seen=anchor.t,
            last_seen=anchor.t,
            counts=dict.fromkeys(SOURCES, 0),
            place=place,
        )
        self.open[inc.id] = inc
        for m in members:
            self._absorb(inc, m)
        inc.severity = severity_of(inc, self.rules.severity, self.cells[place.cell])
        self._push_deadline(inc)
        return [self._emit(inc, EventKind.OPENED, s.t)]

    def _absorb(self, inc: Incident, s: Signal) -> None:
        inc.counts[s.source] += 1
        inc.detections += 1
        inc.first_seen = min(inc.first_seen, s.t)
        inc.last_seen = max(inc.last_seen, s.t)
        inc.max_frp = max(inc.max_frp, s.frp)
        inc.flame = inc.flame or s.flame
        if len(inc.evidence) < self.rules.incidents.evidence_cap:
            inc.evidence.append(s.id)
        if inc.extent:
            west, south, east, north = inc.extent
            inc.extent = [min(west, s.lon), min(south, s.lat), max(east, s.lon), max(north, s.lat)]
        else:
            inc.extent = [s.lon, s.lat, s.lon, s.lat]
        team = self.cells[s.cell].team
        if team and team not in inc.teams and len(inc.teams) < TEAMS_CAP:
            inc.teams.append(team)
        self._follow(inc, s)
        self._sights.own(s, inc.id)

    def _follow(self, inc: Incident, s: Signal) -> None:
        """Track `s` among the incident's recent detections, forgetting the oldest beyond
        track_points (signals come in (time, id) order, so the deque stays in that order)."""
        point = Point.of(s)
        inc.recent.append(point)
        self._points.add(point)
        self._point_owner[point] = inc
        self._max_pixel = max(self._max_pixel, s.pixel_km)
        while len(inc.recent) > self._track:
            old = inc.recent.popleft()
            self._points.remove(old)
            del self._point_owner[old]

    def _push_deadline(self, inc: Incident) -> None:
        """One heap entry per open incident: pushed when it opens; when an entry falls due after
        a later detection joined, close_before pushes the incident's current deadline."""
        heapq.heappush(self._deadlines, (inc.last_seen + self._inactivity, inc.id))

    # -- pending suspects -------------------------------------------------------------------
    def _repeats(self, s: Signal) -> list[Signal]:
        window = self._repeat.get(s.source)
        if window is None:
            return []
        recent = self._pending_by_device.get(s.device, ())
        return [p for p in recent if 0 <= s.t - p.t <= window and self._same_region(s, p)]

    def _nearby_pending(self, s: Signal) -> list[Signal]:
        reach = self._reach(s, 50.0, self._corr_radius)  # 50 km: the largest pixel validated
        return [
            p
            for p in self._pending.near(s.lat, s.lon, reach)
            if 0 <= s.t - p.t <= self._corr_window
            and self._same_region(s, p)
            and distance_km(s.lat, s.lon, p.lat, p.lon)
            <= self._reach(s, p.pixel_km, self._corr_radius)
        ]

    def _same_region(self, a: Signal, b: Signal | Point) -> bool:
        return self._same_cells(a.cell, b.cell)

    def _same_cells(self, a: int, b: int) -> bool:
        return self._region is None or self._region[a] == self._region[b]

    def _add_pending(self, s: Signal) -> None:
        self._pending.add(s)
        self._pending_by_device.setdefault(s.device, deque()).append(s)
        self._pending_order.append(s)

    def _drop_pending(self, s: Signal) -> None:
        self._pending.remove(s)
        self._pending_by_device[s.device].remove(s)
        if not self._pending_by_device[s.device]:
            del self._pending_by_device[s.device]
        self._pending_order.remove(s)

    def _expire_suspects(self, t: float) -> None:
        while self._pending_order and t - self._pending_order[0].t > self._suspect_ttl:
            self._drop_pending(self._pending_order[0])
            self.suspects_expired += 1

    # -- events -----------------------------------------------------------------------------
    def _emit(self, inc: Incident, kind: EventKind, at: float) -> IncidentEvent:
        place = inc.place
        cell = self.cells[place.cell]
        lat, lon = inc.position
        event = IncidentEvent(
            event=kind,
            event_id=f"{inc.id}/{inc.seq}",
            incident_id=inc.id,
            observed_at=utc_datetime(at),
            severity=inc.severity,
            grid_id=cell.id,
            grid_name=cell.name,
            team=cell.team,
            village=cell.village,
            township=cell.township,
            district=cell.district,
            lat=round(place.lat, 6),
            lon=round(place.lon, 6),
            located_by=place.located_by,
            uncertainty_m=place.uncertainty_m,
            current_lat=round(lat, 6),
            current_lon=round(lon, 6),
            extent=_box(inc.extent),
            area_km2=round(inc.area_km2, 4),
            teams=list(inc.teams),
            sources={str(k): v for k, v in inc.counts.items()},
            detections=inc.detections,
            first_seen=utc_datetime(inc.first_seen),
            last_seen=utc_datetime(inc.last_seen),
            rule=inc.rule,
            evidence=list(inc.evidence),
        )
        inc.seq += 1
        return event

    @property
    def pending_suspects(self) -> int:
        return len(self._pending_order)


def _place_rank(place: Place) -> tuple[int, float]:
    """Which member's place a new incident takes (the least): a detection's own, else the most
    certain crossing, else the most certain line of sight; ties: the first member's."""
    order = (LocatedBy.DETECTION, LocatedBy.TRIANGULATED, LocatedBy.LINE_OF_SIGHT)
    return order.index(place.located_by), place.uncertainty_m or 0.0


def _box(extent: list[float]) -> tuple[float, float, float, float] | None:
    if not extent:
        return None
    west, south, east, north = (round(x, 6) for x in extent)
    return west, south, east, north
