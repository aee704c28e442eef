"""Simulated field teams: seeded answers to dispatch orders, in simulated time.

Every decision about an order is a pure function of (seed, order id) and of its team's reliability
(a pure function of (seed, team)), drawn from blake2b, never from Python's randomised `hash`, so a
season replays identically. Per order, for a team of average reliability:

- about 78% acknowledge within 1-8 min, about 12% late (12-45 min: past the 10-min SLA, so the
  order is escalated first), about 10% never;
- of those that never do, half are closed 2-6 h later by the level the order was escalated to, as
  `other` (and a third of those teams try to acknowledge 0.5-3 h after that: an invalid action,
  counted); the other half stay open;
- after acknowledging, a team arrives on scene 10-90 min later (a tenth of them 1.5-4 h: remote
  places), then closes 30 min-5 h after arriving: `extinguished` (80%), `false_alarm` (12%; a third
  of those with cause `known_heat_source`, which makes a suppression mask: the closed loop),
  `controlled_burn` (4%) or `other` (4%), with a short note.

About 15% of teams are unreliable: they are late or silent 2.5 times as often; the rest a little
less often than average, so that the district as a whole matches the shares above.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from firewatch.linkage.model import Action, InvalidTransition, Resolution
from firewatch.linkage.service import Linkage

ON_TIME, LATE, NEVER = 0.78, 0.12, 0.10  # shares for a team of average reliability
UNRELIABLE_SHARE, UNRELIABLE, RELIABLE = 0.15, 2.5, 0.75  # 0.15 * 2.5 + 0.85 * 0.75 ~ 1
OFFICE_CLOSES = 0.5  # of orders never acknowledged: closed by the escalated level
TEAM_WAKES_UP = 1 / 3  # of those: the team acknowledges after the office closed it (invalid)
OUTCOMES = (
    (0.80, Resolution.EXTINGUISHED),
    (0.92, Resolution.FALSE_ALARM),
    (0.96, Resolution.CONTROLLED_BURN),
    (1.00, Resolution.OTHER),
)
HEAT_SOURCE_SHARE = 1 / 3  # of false alarms: cause `known_heat_source` (closed loop)
HEAT_SOURCE = "known_heat_source"
NOTES: dict[Resolution, tuple[str, ...]] = {
    Resolution.EXTINGUISHED: (
        "put out with beaters and a water bag",
        "ground fire put out, ashes soaked",
        "put out with the village volunteers",
    ),
    Resolution.FALSE_ALARM: ("nothing burning on site", "mist in the valley", "dust from a road"),
    Resolution.CONTROLLED_BURN: ("permitted burning of crop stubble", "grave-sweeping offerings"),
    Resolution.OTHER: ("rubbish fire in a yard, put out", "fire already out when we came"),
}
HEAT_SOURCE_NOTES = ("charcoal kiln at the forest edge", "brick kiln chimney", "biomass boiler")
FALSE_ALARM_CAUSE = "misidentified"
OFFICE_NOTE = "closed by {responder}: no team answered; nothing found by the patrol"


@dataclass(frozen=True)
class Step:
    """One thing a team (or the escalated level) will do to an order, and when."""

    at: datetime
    order_id: str
    action: Action
    resolution: Resolution | None = None
    cause: str | None = None
    note: str | None = None
    by_office: bool = False  # the level the order was escalated to, not the field team


@dataclass(frozen=True)
class Done:
    step: Step
    changed: bool  # False: a repeat that changed nothing
    invalid: str | None = None  # the InvalidTransition message, when the linkage refused


def order_rng(seed: int, key: str) -> random.Random:
    """A random stream for one order or team: blake2b of f"{seed}:{key}", not `hash`."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


class TeamSimulator:
    def __init__(self, linkage: Linkage, seed: int) -> None:
        self.linkage = linkage
        self.seed = seed
        self.done: list[Done] = []
        self.invalid = 0
        self._queue: list[tuple[datetime, str, int, Step]] = []  # heap: (at, order, seq, step)
        self._seq = 0
        self._planned: set[str] = set()

    # -- decisions (pure) -------------------------------------------------------------------------
    def reliability(self, team: str | None) -> float:
        """How much more often than average the team is late or silent (1: average)."""
        u = order_rng(self.seed, f"team:{team or '-'}").random()
        return UNRELIABLE if u < UNRELIABLE_SHARE else RELIABLE

    def plan(self, order_id: str, team: str | None, dispatched: datetime) -> list[Step]:
        """What happens to an order dispatched at `dispatched`: a function of (seed, id, team)."""
        rng = order_rng(self.seed, order_id)
        factor = self.reliability(team)
        u = rng.random()
        if u < NEVER * factor:
            return self._silent(rng, order_id, dispatched)
        late = u < (NEVER + LATE) * factor
        ack = dispatched + _minutes(rng, 12, 45) if late else dispatched + _minutes(rng, 1, 8)
        remote = rng.random() < 0.1
        arrive = ack + (_minutes(rng, 90, 240) if remote else _minutes(rng, 10, 90))
        close = arrive + _minutes(rng, 30, 300)
        resolution, cause, note = _outcome(rng)
        return [
            Step(ack, order_id, Action.ACK),
            Step(arrive, order_id, Action.ARRIVE),
            Step(close, order_id, Action.CLOSE, resolution, cause, note),
        ]

    def _silent(self, rng: random.Random, order_id: str, dispatched: datetime) -> list[Step]:
        if rng.random() >= OFFICE_CLOSES:
            return []  # stays open: escalated again and again
        close = dispatched + _minutes(rng, 120, 360)
        steps = [Step(close, order_id, Action.CLOSE, Resolution.OTHER, None, None, True)]
        if rng.random() < TEAM_WAKES_UP:
            steps.append(Step(close + _minutes(rng, 30, 180), order_id, Action.ACK))
        return steps

    # -- simulated time ---------------------------------------------------------------------------
    def on_dispatched(self, order_ids: list[str], now: datetime) -> None:
        """Schedule the answers to new orders (ids seen before are ignored)."""
        new = [oid for oid in dict.fromkeys(order_ids) if oid not in self._planned]
        for order in self.linkage.store.get_many(new):
            self._planned.add(order.id)
            for step in self.plan(order.id, order.team, now):
                heapq.heappush(self._queue, (step.at, step.order_id, self._seq, step))
                self._seq += 1

    def next_action_time(self) -> datetime | None:
        return self._queue[0][0] if self._queue else None

    def run_until(self, t: datetime, reach: Callable[[datetime], object]) -> int:
        """Carry out every action due at or before t, in time order, each once `reach(its time)`
        returned (the season's reach: simulated time is there or later, by a jump or a wait);
        returns how many."""
        n = 0
        while self._queue and self._queue[0][0] <= t:
            step = heapq.heappop(self._queue)[3]
            reach(step.at)
            self.done.append(self._perform(step))
            n += 1
        return n

    def _perform(self, step: Step) -> Done:
        try:
            if step.action is Action.ACK:
                _, changed = self.linkage.ack(step.order_id)
            elif step.action is Action.ARRIVE:
                _, changed = self.linkage.arrive(step.order_id)
            else:
                assert step.resolution is not None
                note = step.note
                if step.by_office:
                    responder = self.linkage.store.get(step.order_id).responder
                    note = OFFICE_NOTE.format(responder=responder)
                _, changed = self.linkage.close(step.order_id, step.resolution, step.cause, note)
        except InvalidTransition as exc:
            self.invalid += 1
            return Done(step, False, str(exc))
        return Done(step, changed)


def _minutes(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(seconds=round(rng.uniform(lo, hi) * 60))


def _outcome(rng: random.Random) -> tuple[Resolution, str | None, str]:
    u = rng.random()
    resolution = next(r for edge, r in OUTCOMES if u < edge)
    if resolution is Resolution.FALSE_ALARM:
        if rng.random() < HEAT_SOURCE_SHARE:
            return resolution, HEAT_SOURCE, rng.choice(HEAT_SOURCE_NOTES)
        return resolution, FALSE_ALARM_CAUSE, rng.choice(NOTES[resolution])
    return resolution, None, rng.choice(NOTES[resolution])
