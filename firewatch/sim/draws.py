"""Many rounds of a scalar-draw loop at once, with the numbers the loop itself would draw.

A fire's place is found by tries (scenario.py), each drawn as one `rng.integers(bound)` and two
`rng.uniform(...)` calls, and the same seed must keep giving the same places. A season makes
about 250,000 tries: seconds of numpy calls one by one, milliseconds as arrays. `rounds` works
out what those calls return from the generator's raw 64-bit words (numpy's PCG64 Generator):

- `integers(bound)`, bound < 2**32, takes a 32-bit half: the low half of a new word, whose high
  half the generator keeps (`has_uint32`, `uinteger` in its state) for the next such call; the
  value is Lemire's (half * bound) >> 32, drawn again in rare cases (`rounds` gives up: None);
- `uniform(lo, hi)` takes a whole word: lo + (hi - lo) * ((word >> 11) * 2**-53), which the
  caller computes from the `u1` and `u2` given here.

`seek` puts the generator just before a given round; the caller then draws that round with the
real calls, which leaves the generator exactly where the loop would have left it, and compares:
a numpy whose generator works otherwise is caught there, and the caller draws one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

UInt = NDArray[np.uint64]
_LOW = np.uint64(0xFFFF_FFFF)


@dataclass(frozen=True)
class Rounds:
    """`n` rounds of (integers(bound), a uniform, a uniform), and where each one starts."""

    state: Mapping[str, Any]  # the generator's state before the first round
    ints: NDArray[np.int64]
    u1: NDArray[np.float64]  # in [0, 1): uniform(lo, hi) is lo + (hi - lo) * u1
    u2: NDArray[np.float64]
    # before each round, and after the last: raw words taken, and the generator's 32-bit register
    words_before: NDArray[np.int64]
    has_kept: NDArray[np.bool_]  # the register holds a half the next integer takes
    kept: UInt

    def __len__(self) -> int:
        return len(self.ints)


def rounds(rng: np.random.Generator, n: int, bound: int) -> Rounds | None:
    """What `n` rounds would draw; the generator is left as it was. None: not like this numpy."""
    bitgen = rng.bit_generator
    state = bitgen.state
    if state.get("bit_generator") != "PCG64" or not 2 <= bound < 2**32 or n < 1:
        return None  # (integers(1) draws nothing at all)
    fresh = (int(state["has_uint32"]) + np.arange(n + 1)) % 2 == 0  # takes a new word
    takes = 2 + fresh[:n]
    words_before = np.concatenate([[0], np.cumsum(takes)])
    raw: UInt = bitgen.random_raw(int(words_before[-1]) + 1)
    bitgen.state = state
    word = raw[words_before]  # a fresh round's integer word (another round: its first uniform)
    # the kept half before each round: the high half of the last new integer word before it
    last = np.maximum.accumulate(np.where(fresh[:n], np.arange(n), -1))
    last = np.concatenate([[-1], last])
    initial = np.uint64(int(state["uinteger"]) & 0xFFFF_FFFF)
    kept = np.where(last >= 0, word[np.maximum(last, 0)] >> np.uint64(32), initial)
    half = np.where(fresh, word & _LOW, kept)[:n]
    m = half * np.uint64(bound)
    if ((m & _LOW) < np.uint64((2**32 - bound) % bound)).any():
        return None  # Lemire's method draws again here: leave it to the real calls
    first = words_before[:n] + fresh[:n]
    return Rounds(
        state=state,
        ints=(m >> np.uint64(32)).astype(np.int64),
        u1=_unit(raw[first]),
        u2=_unit(raw[first + 1]),
        words_before=words_before,
        has_kept=~fresh,
        kept=kept,
    )


def _unit(words: UInt) -> NDArray[np.float64]:
    """numpy's next_double: the top 53 bits as a fraction of 2**53."""
    return (words >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def seek(rng: np.random.Generator, drawn: Rounds, i: int) -> None:
    """Put the generator just before round `i` of `drawn` (i = len(drawn): after the last)."""
    bitgen = rng.bit_generator
    bitgen.state = drawn.state
    bitgen.random_raw(int(drawn.words_before[i]), output=False)
    state = dict(bitgen.state)
    state["has_uint32"], state["uinteger"] = int(drawn.has_kept[i]), int(drawn.kept[i])
    bitgen.state = state
