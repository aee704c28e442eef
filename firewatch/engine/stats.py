"""What the engine counts, and how long its stages take when the caller wants to know.

`EngineStats` is cumulative. Its totals (records, rejects, outcomes, masks, late, events) are part
of the engine's snapshot (state.py), so they continue after a restore. The breakdowns by source
(and, for located detections, by the cell's district) count since the object was made and are
not saved: they exist for metrics, which take deltas of them at the edges (firewatch/metrics).

Stage durations: the engine reads no clock. A caller that wants them sets `Engine.timer` to a
monotonic timer (e.g. time.perf_counter); `Laps` adds up the seconds per stage until the caller
takes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firewatch.engine.signals import SOURCE_CODE
from firewatch.engine.state import StatsState
from firewatch.model import EventKind, Outcome, Source

CODE_SOURCE: dict[int, str] = {code: source.value for source, code in SOURCE_CODE.items()}
STAGES = ("locate", "rules", "incidents")  # timed by the engine; `validate` by the edges


@dataclass
class EngineStats:
    records: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # Outcome values, first decision
    suppressed_by: Counter[str] = field(default_factory=Counter)  # mask name (or `static`)
    late: int = 0
    events: Counter[str] = field(default_factory=Counter)  # EventKind values
    # not in snapshots (see the module): since this object was made
    by_source: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, outcome)
    late_by_source: Counter[str] = field(default_factory=Counter)
    located: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, district)

    def add(self, outcome: Outcome, source: Source) -> None:
        """One fire signal's outcome."""
        self.outcomes[outcome] += 1
        self.by_source[(source.value, outcome.value)] += 1

    def add_late(self, source: Source) -> None:
        self.late += 1
        self.late_by_source[source.value] += 1

    def add_batch(self, source: np.ndarray, masks: dict[Outcome, np.ndarray]) -> None:
        """Outcomes decided for a whole batch: `source` codes (signals.SOURCE_CODE) of the
        batch's detections, and per outcome a boolean mask over them."""
        for outcome, mask in masks.items():
            counts = np.bincount(source[mask], minlength=len(CODE_SOURCE))
            self.outcomes[outcome] += int(counts.sum())
            for code, n in enumerate(counts.tolist()):
                if n:
                    self.by_source[(CODE_SOURCE[code], outcome.value)] += n

    def add_located(self, source: np.ndarray, district: np.ndarray, names: Sequence[str]) -> None:
        """Located detections: their source codes and the index in `names` of their cell's
        district (one entry per located detection)."""
        if not source.size:
            return
        width = len(names)
        counts = np.bincount(
            source.astype(np.int64) * width + district, minlength=len(CODE_SOURCE) * width
        )
        for k in np.flatnonzero(counts).tolist():
            self.located[(CODE_SOURCE[k // width], names[k % width])] += int(counts[k])

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "rejected": dict(sorted(self.rejected.items())),
            "outcomes": {o.value: self.outcomes[o.value] for o in Outcome},
            "suppressed_by": dict(sorted(self.suppressed_by.items())),
            "late": self.late,
            "events": {k.value: self.events[k.value] for k in EventKind},
        }

    def state(self) -> StatsState:
        return StatsState(
            records=self.records,
            late=self.late,
            rejected=self.rejected,
            outcomes=self.outcomes,
            suppressed_by=self.suppressed_by,
            events=self.events,
        )

    @classmethod
    def from_state(cls, s: StatsState) -> EngineStats:
        return cls(
            records=s["records"],
            rejected=Counter(s["rejected"]),
            outcomes=Counter(s["outcomes"]),
            suppressed_by=Counter(s["suppressed_by"]),
            late=s["late"],
            events=Counter(s["events"]),
        )


class Laps:
    """Seconds per stage since the last `take`, measured with an injected monotonic timer; with
    none (the default) nothing is measured and `take` gives {}."""

    def __init__(self) -> None:
        self.timer: Callable[[], float] | None = None
        self._seconds: dict[str, float] = {}

    def start(self) -> float:
        return self.timer() if self.timer is not None else 0.0

    def lap(self, stage: str, since: float) -> float:
        """Add the time since `since` (a `start` or `lap` result) to `stage`; the time now."""
        if self.timer is None:
            return 0.0
        now = self.timer()
        self._seconds[stage] = self._seconds.get(stage, 0.0) + (now - since)
        return now

    def take(self) -> dict[str, float]:
        taken, self._seconds = self._seconds, {}
        return taken
