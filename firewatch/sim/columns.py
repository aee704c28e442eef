"""Many JSON lines at once: each line a row of text pieces, each piece picked from a small table.

A `Column` is a table of pieces and, for each line, the index of its piece (-1: none). `join`
gathers the pieces of all lines with one numpy fancy index and joins them with one `str.join`, so
the loop over lines runs in C. The tables stay small because the values are few: a reading's text
is one of the tenths in its range, an epoch second is its thousands and its last three digits.
The texts are those `repr` and `str` give, so the lines are the same bytes as formatting each
value on its own.

Pieces are str holding bytes as latin-1 (one character per byte, so any bytes, even a malformed
line's, go through unchanged): str.join is several times faster than bytes.join on many small
pieces, which sets up a buffer per piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

MAX_TABLE = 1_000_000  # a range table larger than this: a table of the distinct values instead
KEEP_STEPS = 100_000  # range tables up to this size are kept for the next call


@dataclass(frozen=True)
class Column:
    """One piece per line: `table[index[i]]` for line i, nothing where the index is -1."""

    table: list[str]  # bytes as latin-1
    index: IntArray

    def take(self, rows: IntArray) -> Column:
        """The pieces of the given rows."""
        return Column(self.table, self.index[rows])

    def only(self, keep: BoolArray) -> Column:
        """The same pieces where `keep`, none elsewhere."""
        return Column(self.table, np.where(keep, self.index, -1))


def join(columns: Sequence[Column]) -> bytes:
    """Line after line, the pieces of each line in column order, as one bytes object."""
    return text(columns).encode("latin-1")


def text(columns: Sequence[Column]) -> str:
    """What `join` gives, as str (bytes as latin-1)."""
    pool = [""]  # index 0: the empty piece, left out
    at = np.zeros((len(columns[0].index), len(columns)), dtype=np.int64)
    for j, column in enumerate(columns):
        at[:, j] = np.where(column.index >= 0, column.index + len(pool), 0)
        pool.extend(column.table)
    pieces = np.empty(len(pool), dtype=object)
    pieces[:] = pool
    flat = at.ravel()
    return "".join(pieces[flat[flat > 0]].tolist())


def decimals(rounded: FloatArray, places: int, after: str = "") -> Column:
    """`repr` of each value, as `np.round(x, places)` made it, followed by `after`.

    np.round(x, places) is rint(x * 10**places) / 10**places, so the values are that division of
    the integers in a range, and the table is built over that range (checked value by value)."""
    if rounded.size == 0:
        return Column([], np.zeros(0, dtype=np.int64))
    scale = 10.0**places
    steps = np.rint(rounded * scale)
    lo, hi = float(steps.min()), float(steps.max())
    if hi - lo < MAX_TABLE:
        values = np.arange(lo, hi + 1) / scale
        index = (steps - lo).astype(np.int64)
        same = values[index] == rounded
        if same.all() and not np.signbit(rounded[rounded == 0]).any():
            return Column(_steps_texts(int(lo), int(hi), places, after), index)
    distinct, index = np.unique(rounded, return_inverse=True)  # NaN, -0.0, huge ranges
    return Column([repr(v) + after for v in distinct.tolist()], index.astype(np.int64))


_STEPS: dict[tuple[int, str], tuple[int, list[str]]] = {}  # (places, after): (first step, texts)


def _steps_texts(lo: int, hi: int, places: int, after: str) -> list[str]:
    """[repr(i / 10**places) + after for i in lo..hi], from texts kept from earlier calls (a
    season's episodes write readings of much the same ranges)."""
    first, texts = _STEPS.get((places, after), (lo, []))
    if hi - lo >= KEEP_STEPS:
        return [repr(v) + after for v in (np.arange(lo, hi + 1) / 10.0**places).tolist()]
    if not texts or lo < first or hi >= first + len(texts):
        end = max(hi, first + len(texts) - 1) if texts else hi
        first = min(lo, first) if texts else lo
        values = (np.arange(first, end + 1) / 10.0**places).tolist()
        texts = [repr(v) + after for v in values]
        _STEPS[(places, after)] = first, texts
    return texts[lo - first : hi - first + 1]


def integers(values: IntArray) -> list[Column]:
    """`str` of each integer, in two columns: the thousands, then the last three digits.

    (Values below 1000 are written whole in the first column, the second left empty.)"""
    whole = values < 1000
    high = np.where(whole, values, values // 1000)
    if high.size == 0:
        first = Column([], np.zeros(0, dtype=np.int64))
    elif int(high.max()) - int(high.min()) < MAX_TABLE:
        lo = int(high.min())
        first = Column([str(v) for v in range(lo, int(high.max()) + 1)], high - lo)
    else:
        distinct, index = np.unique(high, return_inverse=True)
        first = Column([str(v) for v in distinct.tolist()], index.astype(np.int64))
    last = Column(_THREE_DIGITS, np.where(whole, -1, values % 1000))
    return [first, last]


_THREE_DIGITS = [f"{i:03d}" for i in range(1000)]
