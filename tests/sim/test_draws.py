"""Many tries at once, with the numbers (and the generator state) of the one-by-one loop."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firewatch.sim import draws
from firewatch.simulate import write_stream

GRID = Path(__file__).resolve().parents[2] / "data" / "grids" / "qujiang.geojson"


def one_by_one(rng: np.random.Generator, n: int, bound: int) -> tuple[list[Any], ...]:
    """The loop `rounds` stands for, with the generator's state before each round."""
    states, ints, angles, dists = [], [], [], []
    for _ in range(n):
        states.append(rng.bit_generator.state)
        ints.append(int(rng.integers(bound)))
        angles.append(rng.uniform(0, 2 * np.pi))
        dists.append(rng.uniform(0.2, 0.6))
    return states, ints, angles, dists


@pytest.mark.parametrize("bound", [2, 3, 30, 517, 2**20])
@pytest.mark.parametrize("kept", [0, 1])  # the generator holds half a word from before, or not
def test_rounds_are_what_the_loop_draws_and_seek_puts_the_generator_where_it_would_be(
    bound: int, kept: int
) -> None:
    rng = np.random.default_rng([11, bound])
    for _ in range(kept):
        rng.integers(7)
    for n in (1, 2, 5, 3000):
        drawn = draws.rounds(rng, n, bound)
        assert drawn is not None and len(drawn) == n
        states, ints, angles, dists = one_by_one(rng, n, bound)
        after = rng.bit_generator.state
        assert drawn.ints.tolist() == ints
        u1, u2 = drawn.uniforms(np.arange(n))
        assert (2 * np.pi * u1).tolist() == angles
        assert (0.2 + (0.6 - 0.2) * u2).tolist() == dists
        some = np.array(sorted({n - 1, n // 3, 0}))  # any rows, in any number
        assert (2 * np.pi * drawn.uniforms(some)[0]).tolist() == [angles[i] for i in some]
        for i in sorted({0, 1 % n, n // 2, n - 1}):
            draws.seek(rng, drawn, i)
            assert rng.bit_generator.state == states[i]
        draws.seek(rng, drawn, n)
        assert rng.bit_generator.state == after


def test_rounds_leave_the_generator_as_it_was() -> None:
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    assert draws.rounds(rng, 100, 30) is not None
    assert rng.bit_generator.state == before


def test_what_rounds_cannot_work_out_is_left_to_the_loop() -> None:
    rng = np.random.default_rng(3)
    assert draws.rounds(rng, 10, 1) is None  # integers(1) draws nothing
    assert draws.rounds(rng, 0, 30) is None
    assert draws.rounds(rng, 100, 2**31 + 1) is None  # Lemire's method draws again, often here
    assert draws.rounds(np.random.Generator(np.random.MT19937(3)), 10, 30) is None


def test_fires_are_placed_the_same_whether_tries_are_drawn_at_once_or_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day with 40 fires, most placed after a thousand tries or more (relax levels 1 and 2).
    Drawn one by one (rounds says it cannot), or from rounds that are wrong (caught by the real
    draw of one try per chunk), the bytes are the same."""
    options: dict[str, Any] = {"seed": 4, "hours": 24, "sensors": 12, "fires": 40}
    streams = {}
    real = draws.rounds

    def wrong(rng: np.random.Generator, n: int, bound: int) -> draws.Rounds | None:
        drawn = real(rng, n, bound)
        if drawn is None:
            return None
        return dataclasses.replace(drawn, raw=drawn.raw ^ np.uint64(1 << 40))  # the uniforms

    for name, rounds in [("at once", real), ("one by one", lambda *_: None), ("wrong", wrong)]:
        monkeypatch.setattr(draws, "rounds", rounds)
        path = tmp_path / f"{name}.jsonl"
        summary = write_stream(path, GRID, **options)
        streams[name] = (path.read_bytes(), summary)
    assert streams["at once"] == streams["one by one"] == streams["wrong"]
    assert len(streams["at once"][1].fires) == 40
