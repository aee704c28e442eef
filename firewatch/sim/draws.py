"""Many rounds of a scalar-draw loop at once, with the numbers the loop itself would draw.

A fire's place is found by tries (placement.py), each drawn as one `rng.integers(bound)` and two
`rng.uniform(...)` calls, and the same seed must keep giving the same places. A season makes
about 250,000 tries: seconds of numpy calls one by one, milliseconds as arrays. `rounds` works
out what those calls return from the generator's raw 64-bit words (numpy's PCG64 Generator):

- `integers(bound)`, bound < 2**32, takes a 32-bit half: the low half of a new word, whose high
  half the generator keeps (`has_uint32`, `uinteger` in its state) for the next such call; the
  value is Lemire's (half * bound) >> 32, drawn again in rare cases (`rounds` gives up: None);
- `uniform(lo, hi)` takes a whole word: lo + (hi - lo) * ((word >> 11) * 2**-53), which the
  caller computes from the `u1` and `u2` given here.

So the rounds go two by two in five words (a new integer word, whose low half is the first
round's integer and high half the second's, and each round's two uniforms), after a first round
of two words if the generator already holds a half: where each number is, is arithmetic.

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
_HIGH = np.uint64(32)
_ULP = 1.0 / 9007199254740992.0  # 2**-53


@dataclass(frozen=True)
class Rounds:
    """`n` rounds of (integers(bound), a uniform, a uniform) from `state`."""

    state: Mapping[str, Any]  # the generator's state before the first round
    ints: NDArray[np.int64]
    raw: UInt  # the words the rounds take
    lead: int  # 2 if the first round takes the half the generator holds (its words), else 0

    def __len__(self) -> int:
        return len(self.ints)

    def uniforms(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The two uniforms of the given rounds, in [0, 1): uniform(lo, hi) is lo + (hi - lo) * u.
        (Round j of the pairs takes words 1, 2 of its five if j is even, else 3, 4; a lead
        round is "pair -1, odd": words 0, 1.)"""
        j = rows - self.lead // 2
        at = self.lead + 5 * (j // 2) + 1 + 2 * (j % 2)
        return _unit(self.raw[at]), _unit(self.raw[at + 1])

    def uniform_pair(self, row: int) -> tuple[float, float]:
        """`uniforms` of one round, as Python floats (the same numbers)."""
        j = row - self.lead // 2
        at = self.lead + 5 * (j // 2) + 1 + 2 * (j % 2)
        return (int(self.raw[at]) >> 11) * _ULP, (int(self.raw[at + 1]) >> 11) * _ULP

    def position(self, i: int) -> tuple[int, bool, int]:
        """Before round i (i = len: after the last): the raw words taken since `state`, whether
        the generator holds a half, and its 32-bit register (kept even when not held)."""
        initial = int(self.state["uinteger"]) & 0xFFFF_FFFF
        if self.lead and i == 0:
            return 0, True, initial
        pair, second = divmod(i - self.lead // 2, 2)
        first_word = self.lead + 5 * pair  # of the pair: its integers' word
        if second:
            return first_word + 3, True, int(self.raw[first_word] >> _HIGH)
        kept = int(self.raw[first_word - 5] >> _HIGH) if pair else initial
        return first_word, False, kept


def rounds(rng: np.random.Generator, n: int, bound: int) -> Rounds | None:
    """What `n` rounds would draw; the generator is left as it was. None: not like this numpy."""
    bitgen = rng.bit_generator
    state = bitgen.state
    if state.get("bit_generator") != "PCG64" or not 2 <= bound < 2**32 or n < 1:
        return None  # (integers(1) draws nothing at all)
    lead = 2 if state["has_uint32"] else 0
    count = (n - lead // 2 + 1) // 2  # rounds two by two
    raw: UInt = bitgen.random_raw(lead + 5 * count)
    bitgen.state = state
    word = raw[lead::5]  # each pair's integers' word: low half, then high half
    halves = np.empty(lead // 2 + 2 * count, dtype=np.uint64)
    halves[lead // 2 :: 2] = word & _LOW
    halves[lead // 2 + 1 :: 2] = word >> _HIGH
    if lead:
        halves[0] = int(state["uinteger"]) & 0xFFFF_FFFF
    m = halves[:n] * np.uint64(bound)
    if ((m & _LOW) < np.uint64((2**32 - bound) % bound)).any():
        return None  # Lemire's method draws again here: leave it to the real calls
    return Rounds(state=state, ints=(m >> _HIGH).astype(np.int64), raw=raw, lead=lead)


def _unit(words: UInt) -> NDArray[np.float64]:
    """numpy's next_double: the top 53 bits as a fraction of 2**53."""
    return (words >> np.uint64(11)).astype(np.float64) * _ULP


def seek(rng: np.random.Generator, drawn: Rounds, i: int) -> None:
    """Put the generator just before round `i` of `drawn` (i = len(drawn): after the last)."""
    words, held, kept = drawn.position(i)
    bitgen: Any = rng.bit_generator  # PCG64 (rounds makes Rounds of no other)
    bitgen.state = drawn.state
    bitgen.advance(words)  # as if `words` raw words were drawn
    state = dict(bitgen.state)
    state["has_uint32"], state["uinteger"] = int(held), kept
    bitgen.state = state
