"""engine/silence.py: learning many records at once with numpy gives what one at a time gives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from firewatch.engine.signals import SOURCE_CODE
from firewatch.engine.silence import DOWN, NEW, UP, Silences
from firewatch.model import Source
from firewatch.rules.model import DeviceRules, DeviceSourceRule

RULES = DeviceRules(
    enabled=True,
    sensor=DeviceSourceRule(interval=600, tolerance=3, min_silence=1800),
    camera=DeviceSourceRule(interval=1800, tolerance=3, min_silence=3600),
    learn_after=3,
)


def records(seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Eight devices for two days: own cadences, jitter, copies, silences, one that changes pace."""
    rng = random.Random(seed)
    t, row, sources = [], [], []
    for r in range(8):
        sources.append(SOURCE_CODE[Source.CAMERA if r % 3 == 0 else Source.SENSOR])
        step = rng.choice([60, 300, 600, 1800, 6 * 3600])
        at = rng.uniform(0, step)
        quiet = rng.uniform(0, 40 * 3600), rng.uniform(0, 8 * 3600)
        while at < 48 * 3600:
            if not quiet[0] < at < quiet[0] + quiet[1]:
                t.append(at + rng.uniform(-5, 5))
                row.append(r)
                if rng.random() < 0.02:  # a copy
                    t.append(t[-1])
                    row.append(r)
            at += step * (3 if r == 7 and at > 24 * 3600 else 1)
    return np.array(t), np.array(row), sources


def fresh(sources: list[int]) -> Silences:
    s = Silences(RULES)
    for code in sources:
        s.add(code)
    return s


def state(s: Silences) -> tuple[list[float], list[int], list[int], list[float]]:
    n = s.n
    return (s.last[:n].tolist(), s.gap_ms[:n].tolist(), s.gaps[:n].tolist(), s.down_at[:n].tolist())


@pytest.mark.parametrize("seed", range(6))
def test_many_at_once_is_one_at_a_time(seed: int) -> None:
    t, row, sources = records(seed)
    order = np.argsort(t, kind="stable")
    t, row = t[order], row[order]
    cuts = sorted(random.Random(seed).sample(range(1, len(t)), 25))
    together, alone = fresh(sources), fresh(sources)
    got, expected = [], []
    for lo, hi in zip([0, *cuts], [*cuts, len(t)], strict=True):  # releases of many records
        got += together.take(t[lo:hi], row[lo:hi])
        got += together.check(float(t[hi - 1]))
        for ti, r in zip(t[lo:hi].tolist(), row[lo:hi].tolist(), strict=True):
            alone._step(ti, r, expected)
        expected += alone.check(float(t[hi - 1]))
    assert sorted(got) == sorted(expected)
    assert np.array_equal(np.array(state(together)), np.array(state(alone)), equal_nan=True)
    kinds = {kind for _, kind, *_ in got}
    assert kinds == {NEW, DOWN, UP}  # the silences were seen
