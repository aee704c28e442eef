"""NASA FIRMS active-fire CSV (MODIS and VIIRS, near-real-time and archive) to satellite detections.

Each row becomes a satellite detection dict, and a batch of them is validated by the same DETECTIONS
adapter and reject rules as JSON input (validate.validate_objects). Rejects name the CSV column
(latitude, acq_time, ...) rather than the detection field it feeds.

Mapping:
* observed_at: acq_date (YYYY-MM-DD) and acq_time (HHMM UTC, zero padding optional: "56" is 00:56);
* satellite: T/A/N/N20/N21 (or 1/2) are spelled Terra, Aqua, SNPP, NOAA20, NOAA21; others as given;
* instrument: the `instrument` column, else MODIS when there is a `brightness` column, VIIRS when
  there is a `bright_ti4` one; device_id is "{satellite}-{instrument}", e.g. "Terra-MODIS";
* confidence: a number is a MODIS percentage, divided by 100; a VIIRS class low/nominal/high (or
  l/n/h) becomes 0.2/0.6/0.9. FIRMS classes MODIS confidence as low below 30, nominal from 30 to
  80 and high from 80, so these values put each VIIRS class in the matching MODIS band;
* frp -> frp_mw, scan -> scan_km, track -> track_km (an empty cell is left out);
* type 2 (other static land source: gas flares, industry) -> static True. Every other type is
  False: 0 (presumed vegetation fire), 1 (active volcano) and 3 (offshore, e.g. a gas platform;
  such rows lie at sea, outside any forest grid, so they locate nowhere rather than being
  suppressed);
* no id: FIRMS rows have none, so detection_id hashes the content.

A row with the wrong number of cells is malformed_json (the reason for "the record cannot be
parsed", whatever the format); a row with an empty required cell is missing_field.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from firewatch.errors import InputError
from firewatch.ingest.validate import (
    Problem,
    RawLine,
    iter_lines,
    make_reject,
    validate_objects,
)
from firewatch.model import AnyDetection, Reject, RejectReason

FIRMS_COLUMNS = frozenset(
    {"latitude", "longitude", "acq_date", "acq_time", "satellite", "confidence"}
)
SATELLITES = {
    "T": "Terra",
    "A": "Aqua",
    "N": "SNPP",
    "N20": "NOAA20",
    "1": "NOAA20",
    "N21": "NOAA21",
    "2": "NOAA21",
}
CONFIDENCE_CLASSES = {
    "low": 0.2,
    "l": 0.2,
    "nominal": 0.6,
    "n": 0.6,
    "high": 0.9,
    "h": 0.9,
}
STATIC_TYPES = frozenset({"2"})
OPTIONAL_NUMBERS = {"frp": "frp_mw", "scan": "scan_km", "track": "track_km"}
# detection field (as pydantic names it) -> CSV column, for rejects
COLUMN_OF = {
    "lat": "latitude",
    "lon": "longitude",
    "observed_at": "acq_date",
    "device_id": "satellite",
    "confidence": "confidence",
    **{field: column for column, field in OPTIONAL_NUMBERS.items()},
}


def is_firms_header(first_line: str) -> bool:
    """Whether a file's first line is the header of a FIRMS active-fire CSV."""
    return set(_columns(first_line)) >= FIRMS_COLUMNS


def read_firms(
    path: Path,
    origin: str | None = None,
    batch_size: int = 5000,
    max_line_bytes: int = 65536,
    not_after: datetime | None = None,
) -> Iterator[tuple[list[AnyDetection], list[Reject]]]:
    """Read a FIRMS CSV file in batches of batch_size rows: (valid detections, rejects) per batch.
    With `not_after`, a row observed later than it is rejected as future_timestamp (`acq_date`).

    Raises InputError when the file cannot be read or its first line is not a FIRMS header.
    """
    origin = str(path) if origin is None else origin
    try:
        with path.open("rb") as fh:
            lines = iter_lines(fh, max_line_bytes)
            header = next(lines, None)
            text = "" if header is None else header.data.decode("utf-8", errors="replace")
            if not is_firms_header(text):
                missing = ", ".join(sorted(FIRMS_COLUMNS - set(_columns(text))))
                raise InputError(f"{origin}: not a FIRMS CSV: first line lacks columns {missing}")
            table = FirmsTable(text, origin)
            batch: list[RawLine] = []
            for line in lines:
                batch.append(line)
                if len(batch) >= batch_size:
                    yield table.convert(batch, not_after)
                    batch = []
            if batch:
                yield table.convert(batch, not_after)
    except OSError as exc:
        raise InputError(f"{origin}: cannot read: {exc.strerror or exc}") from exc


class FirmsTable:
    """Converts the rows of one FIRMS CSV, whose header is known, to detections and rejects."""

    def __init__(self, header: str, origin: str) -> None:
        self.columns = _columns(header)
        self.origin = origin
        self.index = {name: i for i, name in enumerate(self.columns)}
        # used when there is no instrument column, or a row leaves it empty
        self.instrument: str | None = None
        if "bright_ti4" in self.index:
            self.instrument = "VIIRS"
        elif "brightness" in self.index:
            self.instrument = "MODIS"

    def convert(
        self, lines: Sequence[RawLine], not_after: datetime | None = None
    ) -> tuple[list[AnyDetection], list[Reject]]:
        """Rows to (valid detections, rejects), in row order. Blank lines are skipped. With
        `not_after`, a row observed later than it is rejected as future_timestamp."""
        rows: list[dict[str, Any]] = []
        row_lines: list[RawLine] = []
        rejects: list[Reject] = []
        for line in lines:
            if not line.data.strip():
                continue
            row = self._row(line)
            if isinstance(row, Problem):
                rejects.append(make_reject(self.origin, line.number, line.offset, line.data, row))
            else:
                rows.append(row)
                row_lines.append(line)
        result = validate_objects(rows, not_after=not_after)
        for k, problem in result.problems.items():
            line = row_lines[k]
            problem = _renamed(problem)
            rejects.append(make_reject(self.origin, line.number, line.offset, line.data, problem))
        rejects.sort(key=lambda r: r.line or 0)
        return result.detections, rejects

    def _row(self, line: RawLine) -> dict[str, Any] | Problem:
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Problem(RejectReason.MALFORMED_JSON, None, f"row is not UTF-8: {exc.reason}")
        cells = _cells(text)
        if cells is None:
            return Problem(RejectReason.MALFORMED_JSON, None, "row is not valid CSV")
        if len(cells) != len(self.columns):
            message = f"row has {len(cells)} cells, the header {len(self.columns)}"
            return Problem(RejectReason.MALFORMED_JSON, None, message)
        cell = {name: cells[i].strip() for name, i in self.index.items()}
        for name in sorted(FIRMS_COLUMNS):
            if not cell[name]:
                return Problem(RejectReason.MISSING_FIELD, name, f"column '{name}' is empty")
        return _detection(cell, self.instrument)


def _detection(cell: dict[str, str], instrument: str | None) -> dict[str, Any] | Problem:
    observed_at = _observed_at(cell["acq_date"], cell["acq_time"])
    if isinstance(observed_at, Problem):
        return observed_at
    satellite = SATELLITES.get(cell["satellite"], cell["satellite"])
    instrument = cell.get("instrument") or instrument
    row: dict[str, Any] = {
        "source": "satellite",
        "device_id": f"{satellite}-{instrument}" if instrument else satellite,
        "observed_at": observed_at,
        "lat": cell["latitude"],
        "lon": cell["longitude"],
        "confidence": _confidence(cell["confidence"]),
        "satellite": satellite,
        "instrument": instrument,
        "static": cell.get("type") in STATIC_TYPES,
    }
    for column, field in OPTIONAL_NUMBERS.items():
        if cell.get(column):
            row[field] = cell[column]
    return row


def _observed_at(date: str, hhmm: str) -> str | Problem:
    """RFC 3339 text for pydantic to parse (a bad acq_date fails there, named by COLUMN_OF)."""
    if not (hhmm.isascii() and hhmm.isdigit() and len(hhmm) <= 4):
        message = f"column 'acq_time' is not HHMM: {hhmm!r}"
        return Problem(RejectReason.WRONG_TYPE, "acq_time", message)
    hours, minutes = int(hhmm[:-2] or "0"), int(hhmm[-2:])
    if hours > 23 or minutes > 59:
        message = f"column 'acq_time' is not a time of day: {hhmm!r}"
        return Problem(RejectReason.INVALID_VALUE, "acq_time", message)
    return f"{date}T{hours:02d}:{minutes:02d}:00Z"


def _confidence(text: str) -> float | str:
    """A fraction; the text itself when neither a percentage nor a class (pydantic rejects it)."""
    try:
        return float(text) / 100.0
    except ValueError:
        return CONFIDENCE_CLASSES.get(text.lower(), text)


def _renamed(problem: Problem) -> Problem:
    if problem.field is None or problem.field not in COLUMN_OF:
        return problem
    column = COLUMN_OF[problem.field]
    message = problem.message.replace(f"field '{problem.field}'", f"column '{column}'", 1)
    return Problem(problem.reason, column, message)


def _columns(header: str) -> list[str]:
    cells = _cells(header.lstrip("\ufeff").strip()) or []
    return [c.strip().lower() for c in cells]


def _cells(text: str) -> list[str] | None:
    """The cells of one CSV line (None if the csv module cannot read it). FIRMS quotes nothing, so
    a plain split does unless there is a quote."""
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader([text]), [])
    except csv.Error:
        return None
