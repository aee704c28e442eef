"""Severity of an incident from its mix of sources, FRP, cell risk class, detection count and
extent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firewatch.geo.grid import Cell
from firewatch.model import Severity
from firewatch.rules.model import SeverityRules, Step

if TYPE_CHECKING:
    from firewatch.engine.incidents import Incident


def _step(steps: list[Step], value: float) -> int:
    return max((s.points for s in steps if value >= s.min), default=0)


def severity_points(inc: Incident, rules: SeverityRules, cell: Cell) -> int:
    kinds = sum(1 for v in inc.counts.values() if v)
    return (
        rules.source_mix.get(kinds, 0)
        + (rules.flame if inc.flame else 0)
        + _step(rules.frp_mw, inc.max_frp)
        + _step(rules.detections, inc.detections)
        + _step(rules.span_km, inc.span_km)
        + rules.risk.get(cell.risk or "", 0)
    )


def severity_of(inc: Incident, rules: SeverityRules, cell: Cell) -> Severity:
    points = severity_points(inc, rules, cell)
    level = Severity.LOW
    for sev in (Severity.MODERATE, Severity.HIGH, Severity.CRITICAL):
        if points >= rules.levels[sev]:
            level = sev
    return level
