"""Input files to batches of validated detections: JSONL, or FIRMS CSV recognised by its header."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np

from firewatch.errors import InputError
from firewatch.ingest.firms import FirmsTable, is_firms_header
from firewatch.ingest.validate import RawLine, check_lines, iter_lines
from firewatch.model import AnyDetection, Reject

BOM = b"\xef\xbb\xbf"


@dataclass
class Batch:
    """Consecutive lines of one input: what validated, what did not, and how much was read."""

    detections: list[AnyDetection]
    rejects: list[Reject]
    origin: str
    records: int  # non-blank records in these lines: len(detections) + len(rejects)
    bytes: int  # bytes consumed, line endings included (the first batch also counts a CSV header)
    # each detection's event time in epoch seconds, when validation computed it (Checked.t):
    # for Engine.process
    t: np.ndarray | None = None


Convert = Callable[[Sequence[RawLine]], tuple[list[AnyDetection], list[Reject], np.ndarray | None]]


def read_batches(
    path: Path,
    batch_size: int = 5000,
    max_line_bytes: int = 65536,
    not_after: datetime | None = None,
) -> Iterator[Batch]:
    """Read a JSONL or FIRMS CSV file in batches of batch_size lines.

    Bad records are rejects, never errors; an empty file gives no batch. With `not_after` (the
    time the file was recorded plus sources.max_future), a record observed later than it is
    rejected as future_timestamp. Raises InputError, naming the file, only when it cannot be
    opened or read.
    """
    origin = str(path)
    try:
        with path.open("rb") as fh:
            lines = iter_lines(fh, max_line_bytes)
            yield from _batches(lines, origin, batch_size, max_line_bytes, not_after)
    except OSError as exc:
        raise InputError(f"{origin}: cannot read: {exc.strerror or exc}") from exc


def split_lines(data: bytes, max_line_bytes: int = 65536) -> tuple[list[bytes], list[int]]:
    """The lines of an in-memory JSONL body (e.g. an HTTP upload) and their byte offsets, ready
    for validate_lines. (A Kafka message is one record: pass message values to validate_lines.)
    """
    lines = list(iter_lines(io.BytesIO(data), max_line_bytes))
    return [line.data for line in lines], [line.offset for line in lines]


def _batches(
    lines: Iterator[RawLine],
    origin: str,
    batch_size: int,
    max_line_bytes: int,
    not_after: datetime | None,
) -> Iterator[Batch]:
    first = next(lines, None)
    if first is None:
        return
    header_bytes = 0
    convert: Convert
    if is_firms_header(first.data.decode("utf-8", errors="replace")):
        table = FirmsTable(first.data.decode("utf-8", errors="replace"), origin)
        convert = partial(_firms, table, not_after)
        header_bytes = first.size
    else:
        convert = _jsonl(origin, max_line_bytes, not_after)
        lines = _chain(first._replace(data=first.data.removeprefix(BOM)), lines)
    group: list[RawLine] = []
    for line in lines:
        group.append(line)
        if len(group) >= batch_size:
            yield _batch(convert, group, origin, header_bytes)
            group, header_bytes = [], 0
    if group:
        yield _batch(convert, group, origin, header_bytes)


def _jsonl(origin: str, max_line_bytes: int, not_after: datetime | None) -> Convert:
    def convert(
        group: Sequence[RawLine],
    ) -> tuple[list[AnyDetection], list[Reject], np.ndarray | None]:
        checked = check_lines(
            [line.data for line in group],
            origin,
            first_line=group[0].number,
            offsets=[line.offset for line in group],
            max_line_bytes=max_line_bytes,
            not_after=not_after,
        )
        return checked.detections, checked.rejects, checked.t

    return convert


def _firms(
    table: FirmsTable, not_after: datetime | None, group: Sequence[RawLine]
) -> tuple[list[AnyDetection], list[Reject], np.ndarray | None]:
    return (*table.convert(group, not_after=not_after), None)


def _batch(convert: Convert, group: list[RawLine], origin: str, extra_bytes: int) -> Batch:
    detections, rejects, t = convert(group)
    size = extra_bytes + sum(line.size for line in group)
    return Batch(detections, rejects, origin, len(detections) + len(rejects), size, t)


def _chain(first: RawLine, rest: Iterator[RawLine]) -> Iterator[RawLine]:
    yield first
    yield from rest
