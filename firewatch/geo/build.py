"""Build the arrays of a `LocateIndex` with numpy alone: no GEOS call per tile.

Outputs, over a `Tiling`:

- ``raster`` (int32 per tile): ``>= 0`` no cell boundary touches the tile's expanded box and that
  box lies inside this cell, the lowest-index one if several (overlaps); ``-1`` the box is in no
  cell; ``<= -2`` the tile is *mixed* (some boundary may touch its box), k = -value - 2.
- For mixed tile k, rows ``offsets[k]:offsets[k+1]`` of ``table``, grouped by candidate cell in
  increasing cell order: the pieces of boundary that decide, by even-odd crossings of a
  rightward horizontal ray, whether a point of the tile is in each candidate cell.

**Why the pieces decide exactly.** For tile (i, j), let S = X[i+1] + margin (the expanded box's
right border) and (b, u] its expanded height. A point p of the tile is left of S and
b < py < u. The rightward ray from p crosses the cell's boundary left of S and right of S. Left
of S, it can only cross edges that touch the expanded box, clipped to x <= S: those are the
stored pieces. Right of S, the parity of its crossings equals that of the ray from (S, py),
i.e. of the number of points where the boundary crosses the line x = S above py (the even-odd
rule along that line). Those crossing heights c come in two kinds: the ones of edges that touch
the expanded box (each such edge has a clipped piece here, ending at (S, c)); and the others,
which lie outside (b, u] and so above u or below b, the same for every p in the tile. A clipped
piece therefore carries its c (column ``cy``; -inf for a piece that is not clipped), and the
query adds ``py < cy`` to its parity; the parity of the other crossings above u is one bit per
(tile, cell) stored in the candidate's first row (``first`` = 1 + that bit).

A crossing height is computed once, as ``c = y_l + (S - x_l) * (y_r - y_l) / (x_r - x_l)`` from
the edge's left end, and that same float ends the clipped piece and counts on the line, so the
pieces and the line count agree exactly; both use the half-open rules of the query (an edge
crosses x = S when exactly one end has x > S; a piece crosses height py when ay <= py < yhi).

A piece is stored anchored at its lower end (ax, ay), with its upper height ``yhi`` and the unit
direction (ux, uy), uy >= 0, of the edge it comes from. The query's crossing test is
``ay <= py < yhi and ux * (py - ay) - uy * (px - ax) > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from firewatch.geo.tiling import (
    F64,
    I64,
    Edges,
    Tiling,
    centre_cover,
    edge_tiles,
    expand,
    runs_over,
)

I32 = NDArray[np.int32]
NO_CELL = np.iinfo(np.int64).max
COLUMNS = ("ax", "ay", "yhi", "ux", "uy", "cy", "first")
AX, AY, YHI, UX, UY, CY, FIRST = range(len(COLUMNS))
# a row for a candidate whose only contribution is its `first` bit: it never crosses a ray
_PLACEHOLDER = (0.0, np.inf, np.inf, 1.0, 0.0, -np.inf)


@dataclass(frozen=True)
class Built:
    raster: I32  # (ny * nx,)
    offsets: I64  # (mixed tiles + 1,)
    table: F64  # (rows, len(COLUMNS)), sorted by (mixed tile, cell)
    cell: I32  # candidate cell of each row


def unique(a: I64) -> I64:
    """Sorted unique values (a sort; numpy 2's hash-based np.unique is slower on big arrays)."""
    s = np.sort(a)
    keep = np.ones(len(s), dtype=bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


def build(edges: Edges, t: Tiling) -> Built:
    e_of, tile_of = edge_tiles(edges, t)
    mixed = unique(tile_of)
    raster, (held_tile, held_cell) = _raster(edges, t, mixed)
    cr = _line_crossings(edges, t)
    n_cells = int(edges.cell.max()) + 1
    # an edge lying wholly right of S has no piece; sort the rest by (tile, cell) up front, so
    # that the table is written once, in its final order
    keep = tile_of % t.nx >= cr.k_lo[e_of]
    e_of, tile_of = e_of[keep], tile_of[keep]
    key = tile_of * n_cells + edges.cell[e_of]
    order = np.argsort(key, kind="stable")
    e_of, tile_of, key = e_of[order], tile_of[order], key[order]
    del keep, order
    table = np.empty((len(key), len(COLUMNS)))
    _fill_pieces(table, edges, t, e_of, tile_of, cr)
    del e_of, tile_of
    cand = unique(np.concatenate([key, held_tile * n_cells + held_cell]))
    del held_tile, held_cell
    top = _top_bits(edges, t, cand, cr, key, table[:, CY], n_cells)
    pieces = np.bincount(np.searchsorted(cand, key), minlength=len(cand))
    lonely = cand[(pieces == 0) & top]  # no piece, but the bit is set: a placeholder row
    if len(lonely):  # a cell holding the tile with no edge near it: only where cells overlap
        at = np.searchsorted(key, lonely)
        key = np.insert(key, at, lonely)
        table = np.insert(table, at, (*_PLACEHOLDER, 0.0), axis=0)
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    table[:, FIRST] = 0.0
    table[first, FIRST] = 1.0 + top[np.searchsorted(cand, key[first])]
    k = np.searchsorted(mixed, key // n_cells)
    offsets = np.zeros(len(mixed) + 1, dtype=np.int64)
    np.cumsum(np.bincount(k, minlength=len(mixed)), out=offsets[1:])
    raster[mixed] = (-2 - np.arange(len(mixed))).astype(np.int32)
    return Built(raster, offsets, table, (key % n_cells).astype(np.int32))


def _raster(edges: Edges, t: Tiling, mixed: I64) -> tuple[I32, tuple[I64, I64]]:
    """Labels of the pure tiles, and (tile, cell) for every cell holding a mixed tile's centre.

    A tile no boundary touches is inside every cell that holds its centre and outside the rest,
    so its label is the lowest such cell: the run counts give it directly where one cell covers
    the centre; where several do (overlaps), the runs are expanded over those tiles. A cell that
    holds a mixed tile's centre but has no edge near the tile contains the whole tile, and must
    be a candidate there: the runs are expanded over the mixed tiles too (a cell with edges
    near the tile is a candidate anyway, whatever its run says).
    """
    cell, row, start, end = centre_cover(edges, t)
    first, after = row * (t.nx + 1) + start, row * (t.nx + 1) + end
    size = t.ny * (t.nx + 1)
    diff_n = np.bincount(first, minlength=size) - np.bincount(after, minlength=size)
    diff_c = np.bincount(first, weights=cell, minlength=size)
    diff_c -= np.bincount(after, weights=cell, minlength=size)
    count = np.cumsum(diff_n.reshape(t.ny, t.nx + 1), axis=1)[:, : t.nx].ravel()
    label = np.cumsum(diff_c.reshape(t.ny, t.nx + 1), axis=1)[:, : t.nx].ravel()
    raster = np.where(count == 0, -1, np.rint(label)).astype(np.int32)
    del diff_n, diff_c, label
    several = np.flatnonzero(count > 1)
    run, tile = runs_over(row, start, end, several, t.nx)
    lowest = np.full(t.nx * t.ny, NO_CELL, dtype=np.int64)
    np.minimum.at(lowest, tile, cell[run])
    raster[several] = lowest[several].astype(np.int32)
    run, tile = runs_over(row, start, end, mixed, t.nx)
    return raster, (tile, cell[run])


@dataclass(frozen=True)
class Crossings:
    """Where edges cross the lines x = S[k] = X[k+1] + margin.

    An edge crosses S[k] when exactly one end has x > S[k] (the query's half-open rule turned
    sideways), i.e. for k_lo[e] <= k < k_hi[e]; crossing n is edge ``edge[n]`` on line
    ``line[n]`` at height ``y[n]``, and edge e's crossings start at ``first[e]``.
    """

    k_lo: I64
    k_hi: I64
    first: I64
    edge: I64
    line: I64
    y: F64


def _line_crossings(edges: Edges, t: Tiling) -> Crossings:
    s = t.xs[1:] + t.margin
    left = edges.x1 <= edges.x2
    xl = np.where(left, edges.x1, edges.x2)
    yl = np.where(left, edges.y1, edges.y2)
    xr = np.where(left, edges.x2, edges.x1)
    yr = np.where(left, edges.y2, edges.y1)
    k_lo = np.searchsorted(s, xl, side="left")
    k_hi = np.searchsorted(s, xr, side="left")
    counts = k_hi - k_lo
    e, rank = expand(counts)
    line = k_lo[e] + rank
    y = yl[e] + (s[line] - xl[e]) * (yr[e] - yl[e]) / (xr[e] - xl[e])
    return Crossings(k_lo, k_hi, np.cumsum(counts) - counts, e, line, y)


def _direction(edges: Edges) -> tuple[F64, F64]:
    """Unit direction of each edge, pointing up (or right when horizontal)."""
    dx, dy = edges.x2 - edges.x1, edges.y2 - edges.y1
    flip = (dy < 0) | ((dy == 0) & (dx < 0))
    dx, dy = np.where(flip, -dx, dx), np.where(flip, -dy, dy)
    length = np.hypot(dx, dy)
    return dx / length, dy / length


def _fill_pieces(out: F64, edges: Edges, t: Tiling, e_of: I64, tile_of: I64, cr: Crossings) -> None:
    """Columns ax..cy of the piece of each (edge, tile) pair, into `out`.

    The piece is the whole edge if it lies left of S, else the part from its left end L to
    (S, c); it is anchored at its lower end.
    """
    col = tile_of % t.nx
    clipped = col < cr.k_hi[e_of]
    ux, uy = _direction(edges)
    out[:, UX], out[:, UY] = ux[e_of], uy[e_of]
    del ux, uy
    x1, y1, x2, y2 = edges.x1[e_of], edges.y1[e_of], edges.x2[e_of], edges.y2[e_of]
    low = (y1 < y2) | ((y1 == y2) & (x1 <= x2))  # is (x1, y1) the lower end?
    out[:, AX], out[:, AY] = np.where(low, x1, x2), np.where(low, y1, y2)
    out[:, YHI] = np.where(low, y2, y1)
    left = x1 <= x2  # is (x1, y1) the left end?
    lx, ly = np.where(left, x1, x2), np.where(left, y1, y2)
    del x1, y1, x2, y2, low, left
    heights = cr.y if len(cr.y) else np.zeros(1)
    c = heights[np.where(clipped, cr.first[e_of] + col - cr.k_lo[e_of], 0)]
    s = t.xs[col + 1] + t.margin
    c_low = c < ly  # the clipped piece runs from (S, c) up to L, else from L up to (S, c)
    out[:, AX] = np.where(clipped, np.where(c_low, s, lx), out[:, AX])
    out[:, AY] = np.where(clipped, np.where(c_low, c, ly), out[:, AY])
    out[:, YHI] = np.where(clipped, np.where(c_low, ly, c), out[:, YHI])
    out[:, CY] = np.where(clipped, c, -np.inf)


def _top_bits(
    edges: Edges, t: Tiling, cand: I64, cr: Crossings, key: I64, cy: F64, n_cells: int
) -> NDArray[np.bool_]:
    """Per candidate: parity of the crossings on S above u that no piece of the tile carries."""
    cand_tile, cand_cell = cand // n_cells, cand % n_cells
    col, row = cand_tile % t.nx, cand_tile // t.nx
    top = t.ys[1:] + t.margin
    # crossings grouped by (cell, line); within a group sorted by height, so t_rank is sorted
    group = edges.cell[cr.edge] * t.nx + cr.line
    order = np.lexsort((cr.y, group))
    group = group[order]
    t_rank = np.searchsorted(top, cr.y[order], side="left")  # c <= top[j] iff t_rank <= j
    g = cand_cell * t.nx + col
    span = t.ny + 1
    total = np.searchsorted(group, g, side="right") - np.searchsorted(group, g, side="left")
    at_most = np.searchsorted(group * span + t_rank, g * span + row, side="right")
    above = total - (at_most - np.searchsorted(group, g, side="left"))
    piece_row = (key // n_cells) // t.nx
    carried = cy > top[piece_row]
    above -= np.bincount(np.searchsorted(cand, key[carried]), minlength=len(cand))
    return np.asarray(above % 2 == 1)
