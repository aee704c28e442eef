"""The arithmetic of silence: each device's last record, its learned reporting interval, and when
its silence makes it down (engine/health.py keeps who the devices are and what they watch).

Columns by device row. A device's interval is the mean gap between its reports (gaps in whole
milliseconds, summed as integers: the same sum in any order), to the minute, once it has
`learn_after` gaps; before, at least its source's `interval`. Its allowance is
max(min_silence, tolerance x interval): silent for longer after its last record, it is down at
last + allowance. Once learned, a silence that made it down does not count into its interval.

`take` reads records released in event-time order, many at a time: a device whose records this
time only continue its rhythm (the common case) is learned with numpy, over the whole batch; one
that comes back from a silence, or is silent too long between two of them, goes through
`_step`, one record at a time. Both give the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

from firewatch.engine.signals import SOURCE_CODE
from firewatch.rules.model import DeviceRules

DOWN, UP, NEW = 0, 1, 2  # changes; at one time, in this order
Change = tuple[float, int, int, float, float]  # at, kind, device row, last heard, its interval
_GROW = 1024


class Silences:
    def __init__(self, rules: DeviceRules) -> None:
        n_src = max(SOURCE_CODE.values()) + 1
        self.learn_after = rules.learn_after
        self.watched = np.zeros(n_src, bool)
        self._default = np.zeros(n_src)
        self._tolerance = np.ones(n_src)
        self._floor = np.zeros(n_src)
        for source, code in SOURCE_CODE.items():
            rule = rules.rule(source)
            if rule is not None:
                self.watched[code] = True
                self._default[code] = rule.interval.total_seconds()
                self._tolerance[code] = rule.tolerance
                self._floor[code] = rule.min_silence.total_seconds()
        self.n = 0
        self.last = np.full(_GROW, math.nan)  # last heard (event time); NaN: no record yet
        self.down_at = np.full(_GROW, math.nan)  # when it went down; NaN: up
        self.gap_ms = np.zeros(_GROW, np.int64)  # its interval: gap_ms / gaps / 1000
        self.gaps = np.zeros(_GROW, np.int64)
        self.source = np.zeros(_GROW, np.int8)
        self.next_check = math.inf  # no deadline of a device that is up is earlier

    def add(self, source: int) -> int:
        """A new device's row."""
        r = self.n
        if r == len(self.last):
            self._grow()
        self.source[r] = source
        self.n = r + 1
        return r

    # -- records ------------------------------------------------------------------------------
    def take(self, t: np.ndarray, row: np.ndarray) -> list[Change]:
        """Records (any order): first reports, gaps learned, silences that were too long (down
        at the deadline, up at the record)."""
        order = np.lexsort((t, row))  # by device, then time
        t, row = t[order], row[order]
        first = np.ones(len(t), bool)
        first[1:] = row[1:] != row[:-1]
        start = self.last[row]
        # the latest time heard before each record: its device's, or the one before it here
        before = np.where(first, start, np.fmax(np.roll(t, 1), start))
        new = first & np.isnan(start)
        gap = t - before
        counted = gap > 0  # NaN (new) and not after what was heard: nothing to learn
        gap_ms = np.where(counted, np.rint(gap * 1000), 0).astype(np.int64)
        group = np.cumsum(first) - 1
        starts = np.flatnonzero(first)
        ms_before = np.cumsum(gap_ms) - gap_ms
        n_before = np.cumsum(counted) - counted
        ms_before -= ms_before[starts][group]
        n_before -= n_before[starts][group]
        allowance = self._allowance_of(
            self.gap_ms[row] + ms_before, self.gaps[row] + n_before, self.source[row]
        )
        odd = (counted & (gap > allowance)) | (first & ~np.isnan(self.down_at[row]))
        slow = np.isin(group, group[odd])
        changes: list[Change] = [
            (ti, NEW, r, ti, 0.0)
            for ti, r in zip(t[new & ~slow].tolist(), row[new & ~slow].tolist(), strict=True)
        ]
        fast = ~slow
        # a device's records are all fast or all slow, one run each (sorted by device): each run
        # summed at once (integers: exact)
        runs = np.flatnonzero(first[fast])
        if runs.size:
            at = row[fast][runs]
            self.gap_ms[at] += np.add.reduceat(gap_ms[fast], runs)
            self.gaps[at] += np.add.reduceat(counted[fast].astype(np.int64), runs)
        ends = np.flatnonzero(fast & np.append(first[1:], True))  # each fast device's last record
        rows = row[ends]
        self.last[rows] = np.fmax(self.last[rows], t[ends])
        if rows.size:
            deadline = self.last[rows] + self._allowance_of(
                self.gap_ms[rows], self.gaps[rows], self.source[rows]
            )
            self.next_check = min(self.next_check, float(deadline.min()))
        for ti, r in zip(t[slow].tolist(), row[slow].tolist(), strict=True):
            self._step(ti, r, changes)
        return changes

    def _step(self, ti: float, r: int, changes: list[Change]) -> None:
        """One record of a device that does not only keep its rhythm, in order."""
        before = float(self.last[r])
        if math.isnan(before):
            changes.append((ti, NEW, r, ti, 0.0))
        elif ti <= before:
            return
        else:
            interval = self.interval(r)
            allowance = self._allowance(r, interval)
            silent = not math.isnan(self.down_at[r])
            if silent:
                changes.append((ti, UP, r, before, interval))
            elif ti - before > allowance:
                changes.append((before + allowance, DOWN, r, before, interval))
                changes.append((ti, UP, r, before, interval))
                silent = True
            if not silent or self.gaps[r] < self.learn_after:
                self.gap_ms[r] += int(np.rint((ti - before) * 1000))
                self.gaps[r] += 1
            self.down_at[r] = math.nan
        self.last[r] = ti
        self.next_check = min(self.next_check, ti + self._allowance(r, self.interval(r)))

    def check(self, watermark: float) -> list[Change]:
        """Down: the devices up whose deadline the watermark passed, at their deadline."""
        n = self.n
        last = self.last[:n]
        up = ~np.isnan(last) & np.isnan(self.down_at[:n])
        deadline = np.where(up, last + self.allowances(), math.inf)
        gone = np.flatnonzero(deadline < watermark)
        changes: list[Change] = []
        for r in gone.tolist():
            changes.append((float(deadline[r]), DOWN, r, float(last[r]), self.interval(r)))
            self.down_at[r] = deadline[r]
        deadline[gone] = math.inf
        self.next_check = float(deadline.min()) if n else math.inf
        return changes

    # -- intervals ----------------------------------------------------------------------------
    def interval(self, r: int) -> float:
        """Its mean gap, to the minute (so that one record more or less, late or not, rarely
        moves it), or before `learn_after` gaps at least the source's `interval`."""
        gaps = int(self.gaps[r])
        mean = _to_minute(int(self.gap_ms[r]) / gaps / 1000.0) if gaps else 0.0
        if gaps >= self.learn_after:
            return mean
        return max(mean, float(self._default[self.source[r]]))

    def _allowance(self, r: int, interval: float) -> float:
        code = self.source[r]
        return float(max(self._floor[code], self._tolerance[code] * interval))

    def allowances(self) -> np.ndarray:
        """Every device's allowance (`interval` and `_allowance`, with numpy)."""
        n = self.n
        return self._allowance_of(self.gap_ms[:n], self.gaps[:n], self.source[:n])

    def _allowance_of(self, gap_ms: np.ndarray, gaps: np.ndarray, code: np.ndarray) -> np.ndarray:
        mean = np.divide(gap_ms, gaps, out=np.zeros(len(gaps)), where=gaps > 0) / 1000.0
        mean = np.where(mean >= 90.0, np.round(mean / 60.0) * 60.0, np.round(mean))  # _to_minute
        interval = np.where(gaps >= self.learn_after, mean, np.maximum(mean, self._default[code]))
        allowance: np.ndarray = np.maximum(self._floor[code], self._tolerance[code] * interval)
        return allowance

    def _grow(self) -> None:
        """Room for twice as many devices (the columns are allocated ahead)."""
        size = 2 * len(self.last)

        def grown(old: np.ndarray, fill: float) -> np.ndarray:
            new = np.full(size, fill, old.dtype)
            new[: len(old)] = old
            return new

        self.last = grown(self.last, math.nan)
        self.down_at = grown(self.down_at, math.nan)
        self.gap_ms = grown(self.gap_ms, 0)
        self.gaps = grown(self.gaps, 0)
        self.source = grown(self.source, 0)


def _to_minute(seconds: float) -> float:
    """A mean interval to the minute (to the second below 90 s); as in `_allowance_of`."""
    return round(seconds / 60.0) * 60.0 if seconds >= 90.0 else float(round(seconds))
