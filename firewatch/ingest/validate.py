"""Lines of JSON in, validated detections and reasoned rejects out.

Each line is validated on its own (`ONE.validate_json`), so a line's verdict never depends on its
neighbours: joining lines into one JSON array was measured no faster on this workload (see
benchmarks/bench_validate.py), and it would let a crafted line (`..},{..`) merge with the next one.
What clearly pays is pausing the garbage collector during a batch (1.2x to 1.4x). Records already
parsed (FIRMS rows) are validated SUB_BATCH at a time with `LENIENT`, the model's `Detection` in a
union whose fallback marks an invalid record instead of failing the whole list; only those few are
validated again, one by one with `DETECTIONS`, for the errors that say why.

JSON is parsed by pydantic's own parser everywhere, so a line gets the same verdict whatever its
neighbours. That parser accepts the non-standard tokens `NaN`, `Infinity` and `-Infinity`; a record
using them is not `malformed_json` but fails the field's finiteness check: `bad_coordinate` on
lat/lon, `invalid_value` elsewhere. JSON is validated in strict mode: a number given as a string, a
boolean given as a number, or an epoch number as `observed_at` is `wrong_type` (`bad_coordinate` for
lat/lon), not silently converted.

Event time is checked against the reader's clock only when the caller passes one: with
`not_after` (the time the records arrived plus `sources.max_future`, from the caller's clock:
nothing here reads the wall clock), a detection observed later than that is rejected as
`future_timestamp`. Without it (the default), no record is too far in the future.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from hashlib import blake2b
from operator import methodcaller
from typing import Annotated, Any, BinaryIO, NamedTuple, cast

import numpy as np
import orjson
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from firewatch.ingest.epoch import epoch_seconds
from firewatch.model import DETECTIONS, AnyDetection, Detection, Reject, RejectReason, Source

SUB_BATCH = 32  # parsed records per LENIENT call
RAW_CHARS = 200  # characters of an offending line kept in Reject.raw
COORDINATES = frozenset({"lat", "lon", "camera_lat", "camera_lon"})
_TAGS = frozenset(s.value for s in Source)
_STRIP = methodcaller("strip")
# Of several errors in one record, a reject reports the first one of the most relevant reason.
_RANK = {
    reason: rank
    for rank, reason in enumerate(
        (
            RejectReason.MALFORMED_JSON,
            RejectReason.UNKNOWN_SOURCE,
            RejectReason.MISSING_FIELD,
            RejectReason.WRONG_TYPE,
            RejectReason.BAD_COORDINATE,
            RejectReason.NAIVE_TIMESTAMP,
            RejectReason.INVALID_VALUE,
            RejectReason.FUTURE_TIMESTAMP,
        )
    )
}


class Invalid:
    """Stands in LENIENT's output for a record that is not a valid detection."""

    __slots__ = ()


INVALID = Invalid()
LENIENT: TypeAdapter[list[AnyDetection | Invalid]] = TypeAdapter(
    list[
        Annotated[
            Detection | Annotated[Any, AfterValidator(lambda _: INVALID)],
            Field(union_mode="left_to_right"),
        ]
    ]
)


# One JSON line, strict (see the module's docstring). Strict in the schema rather than asked for at
# each call, and called on pydantic-core's validator itself: the keyword and TypeAdapter's Python
# wrapper cost 0.2-0.3 us a line between them (benchmarks/README.md, Engine).
ONE = TypeAdapter(Detection, config=ConfigDict(strict=True)).validator


class Problem(NamedTuple):
    """Why one record was rejected: what a Reject says besides where the record came from."""

    reason: RejectReason
    field: str | None
    message: str


class RawLine(NamedTuple):
    """One line of an input file: 1-based number, byte offset of its start, content without the
    line ending (cut short after max_line_bytes + 2 bytes when longer), and bytes consumed."""

    number: int
    offset: int
    data: bytes
    size: int


class Validated(NamedTuple):
    detections: list[AnyDetection]
    keys: list[int]  # the caller's index of each detection
    problems: dict[int, Problem]  # the caller's index of each rejected record -> why


Many = Callable[[list[int]], list[AnyDetection | Invalid]]  # LENIENT on some records
One = Callable[[int], list[AnyDetection]]  # DETECTIONS on a list of one record


def validate_lines(
    lines: Sequence[bytes],
    origin: str,
    first_line: int | None = 1,
    offsets: Sequence[int] | None = None,
    max_line_bytes: int = 65536,
    *,
    not_after: datetime | None = None,
) -> tuple[list[AnyDetection], list[int], list[Reject]]:
    """Validate JSON records, one per element of `lines` (a file's lines, or Kafka message values).

    Returns the valid detections, the index into `lines` of each, and one Reject per bad record,
    all in input order. Blank lines are skipped. Reject.line is `first_line + index` (None when
    first_line is None, e.g. for Kafka); Reject.offset is `offsets[index]` when offsets are given.
    With `not_after` (timezone-aware: the arrival time plus sources.max_future), a detection
    observed later than it is rejected as future_timestamp. Never raises on bad input.
    """
    checked = check_lines(lines, origin, first_line, offsets, max_line_bytes, not_after=not_after)
    return checked.detections, checked.keys, checked.rejects


class Checked(NamedTuple):
    """What `check_lines` makes of a batch of lines (see validate_lines)."""

    detections: list[AnyDetection]
    keys: list[int]  # the index into the lines of each detection
    rejects: list[Reject]
    # each detection's observed_at in epoch seconds, when it was computed (to check not_after):
    # Engine.prepare takes it rather than computing it again
    t: np.ndarray | None
    blank: list[int]  # the index of each line skipped as blank


def check_lines(
    lines: Sequence[bytes],
    origin: str,
    first_line: int | None = 1,
    offsets: Sequence[int] | None = None,
    max_line_bytes: int = 65536,
    *,
    not_after: datetime | None = None,
    line_numbers: Sequence[int | None] | None = None,
) -> Checked:
    """validate_lines, with the event-time column when `not_after` made it, and the blank lines.
    `line_numbers`: each line's Reject.line, instead of `first_line + index` (a Kafka message's
    lines: their number within the message, stream/pack.py)."""
    _check_bound(not_after)
    if line_numbers is not None and len(line_numbers) != len(lines):
        raise ValueError(f"{len(line_numbers)} line numbers for {len(lines)} lines")
    if lines and max(map(len, lines)) <= max_line_bytes and all(map(_STRIP, lines)):
        oversized, blank = [], []  # the usual batch: C-level passes
        keys: Sequence[int] = range(len(lines))
    else:
        oversized = [i for i, line in enumerate(lines) if len(line) > max_line_bytes]
        blank = [
            i for i, line in enumerate(lines) if len(line) <= max_line_bytes and not line.strip()
        ]
        keys = sorted(set(range(len(lines))).difference(oversized, blank))

    result = Validated([], [], {})
    validate, append, keep = ONE.validate_json, result.detections.append, result.keys.append
    with gc_paused():
        for k in keys:
            try:
                append(validate(lines[k]))
                keep(k)
            except ValidationError as exc:
                result.problems[k] = classify(exc.errors(include_url=False))
    t = reject_future(result, not_after)
    for i in oversized:
        size = "" if len(lines[i]) == max_line_bytes + 2 else f"{len(lines[i])} bytes, "
        message = f"line is {size}longer than the {max_line_bytes} bytes allowed: not parsed"
        result.problems[i] = Problem(RejectReason.OVERSIZED_LINE, None, message)
    rejects = [
        make_reject(
            origin,
            _line_number(i, first_line, line_numbers),
            None if offsets is None else offsets[i],
            lines[i],
            result.problems[i],
        )
        for i in sorted(result.problems)
    ]
    return Checked(result.detections, result.keys, rejects, t, blank)


def _line_number(
    i: int, first_line: int | None, line_numbers: Sequence[int | None] | None
) -> int | None:
    if line_numbers is not None:
        return line_numbers[i]
    return None if first_line is None else first_line + i


def validate_objects(
    objects: Sequence[Mapping[str, Any]],
    *,
    strict: bool = False,
    not_after: datetime | None = None,
) -> Validated:
    """Validate records already parsed (e.g. built from CSV cells), with the same reject rules
    (`not_after` as for validate_lines).

    Lax by default, so that numbers given as text (as CSV cells are) are parsed by pydantic.
    """
    _check_bound(not_after)

    def many(ks: list[int]) -> list[AnyDetection | Invalid]:
        return LENIENT.validate_python([objects[k] for k in ks], strict=strict)

    def one(k: int) -> list[AnyDetection]:
        return DETECTIONS.validate_python([objects[k]], strict=strict)

    with gc_paused():
        result = _in_sub_batches(list(range(len(objects))), many, one)
    reject_future(result, not_after)
    return result


def reject_future(result: Validated, not_after: datetime | None) -> np.ndarray | None:
    """Move the detections of `result` observed after `not_after` to its problems, as
    future_timestamp (in place). Returns the event time (epoch seconds) of each detection kept,
    computed for the check: None when there is nothing to check (not_after is None)."""
    if not_after is None:
        return None
    t = epoch_seconds(result.detections)
    # Microsecond instants as float seconds keep their order (the step between floats is under a
    # microsecond from the year 1698 to 2242), so this is the datetime comparison, without a call
    # into each record's own tzinfo object
    ahead = np.flatnonzero(t > not_after.timestamp())
    if not ahead.size:
        return t
    for j in ahead.tolist():
        observed = result.detections[j]["observed_at"]
        message = (
            f"field 'observed_at' is {observed.isoformat()}, after {not_after.isoformat()}, the "
            f"latest event time accepted on arrival (the reader's clock + sources.max_future): "
            f"is the device's clock ahead?"
        )
        result.problems[result.keys[j]] = Problem(
            RejectReason.FUTURE_TIMESTAMP, "observed_at", message
        )
    kept = np.ones(len(t), dtype=bool)
    kept[ahead] = False
    rows = np.flatnonzero(kept).tolist()
    result.detections[:] = [result.detections[j] for j in rows]
    result.keys[:] = [result.keys[j] for j in rows]
    return t[kept]


def _check_bound(not_after: datetime | None) -> None:
    if not_after is not None and not_after.utcoffset() is None:
        raise ValueError(f"not_after must be timezone-aware, got {not_after.isoformat()}")


def make_reject(
    origin: str, line: int | None, offset: int | None, raw: bytes | str, problem: Problem
) -> Reject:
    if isinstance(raw, bytes):
        raw = raw[: RAW_CHARS * 4].decode("utf-8", errors="replace")
    return Reject(
        origin=origin,
        line=line,
        offset=offset,
        reason=problem.reason,
        field=problem.field,
        message=problem.message,
        raw=raw[:RAW_CHARS],
    )


def describe_reject(reject: Reject) -> str:
    """One line for a human: `origin:line (byte offset): reason [field]: message`."""
    where = reject.origin
    if reject.line is not None:
        where += f":{reject.line}"
    if reject.offset is not None:
        where += f" (byte {reject.offset})"
    field = f" [{reject.field}]" if reject.field else ""
    return f"{where}: {reject.reason.value}{field}: {reject.message}"


def detection_id(d: AnyDetection) -> str:
    """The producer's id when present, else `h-` and a hash of the content.

    The hash covers every field but `id`, with null fields dropped and observed_at in UTC, so that
    the same detection gets the same id whatever its key order, whitespace or UTC offset.
    """
    given = d.get("id")
    if given:
        return given
    body = {k: v for k, v in d.items() if v is not None and k != "id"}
    body["observed_at"] = d["observed_at"].astimezone(UTC)
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return "h-" + blake2b(canonical, digest_size=12).hexdigest()


def iter_lines(fh: BinaryIO, max_line_bytes: int = 65536) -> Iterator[RawLine]:
    """Split a binary stream into lines, with their numbers and offsets, in bounded memory.

    A line longer than max_line_bytes is returned cut short (still longer than max_line_bytes, so
    that validate_lines rejects it as oversized) and the rest of it is skipped.
    """
    number, offset, limit = 0, 0, max_line_bytes + 2
    while line := fh.readline(limit):
        size = len(line)
        if size == limit and not line.endswith(b"\n"):
            while rest := fh.readline(1 << 20):
                size += len(rest)
                if rest.endswith(b"\n"):
                    break
        else:
            line = line.rstrip(b"\r\n")
        number += 1
        yield RawLine(number, offset, line, size)
        offset += size


def _in_sub_batches(keys: list[int], many: Many, one: One) -> Validated:
    result = Validated([], [], {})
    for start in range(0, len(keys), SUB_BATCH):
        part = keys[start : start + SUB_BATCH]
        try:
            out = many(part)
        except ValidationError:  # a JSON syntax error somewhere in the part
            out = []
        if len(out) == len(part) and INVALID not in out:
            result.detections.extend(cast(list[AnyDetection], out))
            result.keys.extend(part)
        elif len(out) == len(part):
            for k, d in zip(part, out, strict=True):
                if isinstance(d, Invalid):
                    _check_one(k, one, result)
                else:
                    result.detections.append(d)
                    result.keys.append(k)
        else:
            for k in part:
                _check_one(k, one, result)
    return result


def _check_one(k: int, one: One, result: Validated) -> None:
    try:
        detections = one(k)
    except ValidationError as exc:
        result.problems[k] = classify(exc.errors(include_url=False))
        return
    if len(detections) == 1:
        result.detections.append(detections[0])
        result.keys.append(k)
    elif detections:  # `{...},{...}` on one line
        message = f"line holds {len(detections)} JSON values, not one object"
        result.problems[k] = Problem(RejectReason.MALFORMED_JSON, None, message)
    # no value at all: a line of whitespace, skipped like a blank one


def classify(errors: Sequence[ErrorDetails]) -> Problem:
    """The Problem of one record from its pydantic errors."""
    problems = [_classify_one(e) for e in errors]
    best = min(problems, key=lambda p: _RANK[p.reason])
    others = sorted({p.field or "record" for p in problems if p is not best})
    if others:
        noun = "field" if len(others) == 1 else "fields"
        best = best._replace(message=f"{best.message} (also bad: {noun} {', '.join(others)})")
    return best


def _classify_one(error: ErrorDetails) -> Problem:
    kind, loc, msg = error["type"], error["loc"], error["msg"]
    path = loc[1:] if loc and isinstance(loc[0], int) else loc  # drop the list position
    if path and path[0] in _TAGS:  # drop the union tag
        path = path[1:]
    field = ".".join(str(p) for p in path) or None
    got = error.get("input")
    if kind == "json_invalid":  # column - 1: the record was validated as `[record]`
        detail = str(error.get("ctx", {}).get("error", msg))
        detail = re.sub(r"line 1 column (\d+)", lambda m: f"column {int(m[1]) - 1}", detail)
        return Problem(RejectReason.MALFORMED_JSON, None, f"not valid JSON: {detail}")
    if kind == "union_tag_not_found":
        return Problem(RejectReason.MISSING_FIELD, "source", "field 'source' is missing")
    if kind == "union_tag_invalid":
        tag = got.get("source") if isinstance(got, dict) else None
        reason = RejectReason.UNKNOWN_SOURCE if isinstance(tag, str) else RejectReason.WRONG_TYPE
        return Problem(reason, "source", f"field 'source' is {_show(tag)}, {_SOURCES_WANTED}")
    if field is None:  # the record itself: a JSON array, number, string or null
        return Problem(RejectReason.WRONG_TYPE, None, f"record is not a JSON object: {_show(got)}")
    if kind == "missing":
        return Problem(RejectReason.MISSING_FIELD, field, f"field '{field}' is missing")
    message = f"field '{field}': {msg}, got {_show(got)}"
    if kind == "timezone_aware":
        message = f"field '{field}' has no UTC offset, got {_show(got)}"
        return Problem(RejectReason.NAIVE_TIMESTAMP, field, message)
    if field in COORDINATES:
        return Problem(RejectReason.BAD_COORDINATE, field, message)
    if kind.endswith(("_type", "_parsing")):
        return Problem(RejectReason.WRONG_TYPE, field, message)
    return Problem(RejectReason.INVALID_VALUE, field, message)


_SOURCES_WANTED = "not one of " + ", ".join(s.value for s in Source)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a batch: validating thousands of records makes
    thousands of dicts, which otherwise trigger collection after collection as they pile up.
    Held over a whole batch (Engine.process_lines, the worker's locate stage), those dicts are
    freed by their reference counts before a collection could meet them."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
