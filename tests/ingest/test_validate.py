"""validate_lines: every kind of bad line is rejected with a reason, and its neighbours survive."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from firewatch.ingest.validate import (
    SUB_BATCH,
    check_lines,
    describe_reject,
    detection_id,
    validate_lines,
)
from firewatch.model import RejectReason

R = RejectReason


def sensor(**fields: Any) -> dict[str, Any]:
    return {
        "source": "sensor",
        "device_id": "qj-s-001",
        "observed_at": "2024-07-01T12:00:00+08:00",
        "lat": 28.95,
        "lon": 118.87,
        "readings": {"temp_c": 31.5, "co_ppm": 2.1},
    } | fields


def camera(**fields: Any) -> dict[str, Any]:
    return {
        "source": "camera",
        "device_id": "qj-c-01",
        "observed_at": "2024-07-01T12:00:05+08:00",
        "lat": 28.96,
        "lon": 118.9,
        "confidence": 0.8,
        "label": "smoke",
        "bearing_deg": 135.0,
        "camera_lat": 28.9,
        "camera_lon": 118.8,
    } | fields


def satellite(**fields: Any) -> dict[str, Any]:
    return {
        "source": "satellite",
        "device_id": "NOAA20-VIIRS",
        "observed_at": "2024-07-01T05:31:00Z",
        "lat": 28.99,
        "lon": 118.81,
        "confidence": 0.6,
        "frp_mw": 4.2,
        "scan_km": 0.39,
        "track_km": 0.36,
        "static": False,
    } | fields


def dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def without(record: dict[str, Any], field: str) -> bytes:
    return dumps({k: v for k, v in record.items() if k != field})


def raw_json(record: dict[str, Any], field: str, token: bytes) -> bytes:
    """The record with `field` set to a JSON token orjson cannot write (NaN, Infinity, ...)."""
    return dumps(record | {field: 0}).replace(
        f'"{field}":0'.encode(), f'"{field}":'.encode() + token
    )


BEFORE = dumps(sensor(id="before", device_id="before"))
AFTER = dumps(camera(id="after", device_id="after"))
LIMIT = 2048

# name, line, expected reason, expected field
BAD_LINES: list[tuple[str, bytes, RejectReason, str | None]] = [
    ("not JSON", b"{this is not json}", R.MALFORMED_JSON, None),
    ("truncated line", dumps(sensor())[:57], R.MALFORMED_JSON, None),
    ("half a record", b'"lat": 28.9, "lon": 118.8}', R.MALFORMED_JSON, None),
    ("two records on one line", dumps(sensor()) + b"," + dumps(sensor()), R.MALFORMED_JSON, None),
    ("byte order mark", b"\xef\xbb\xbf" + dumps(sensor()), R.MALFORMED_JSON, None),
    (
        "not UTF-8 in a string",
        dumps(sensor()).replace(b"qj-s-001", b"qj-s-\xff\xfe"),
        R.MALFORMED_JSON,
        None,
    ),
    ("not UTF-8 outside strings", dumps(sensor()) + b"\xff", R.MALFORMED_JSON, None),
    ("latin-1 line", "température=31°C".encode("latin-1"), R.MALFORMED_JSON, None),
    ("JSON array", b"[1, 2, 3]", R.WRONG_TYPE, None),
    ("JSON number", b"42", R.WRONG_TYPE, None),
    ("JSON string", b'"sensor"', R.WRONG_TYPE, None),
    ("JSON null", b"null", R.WRONG_TYPE, None),
    ("missing source", without(sensor(), "source"), R.MISSING_FIELD, "source"),
    *[
        (f"missing {field} ({make.__name__})", without(make(), field), R.MISSING_FIELD, field)
        for make, fields in (
            (sensor, ("device_id", "observed_at", "lat", "lon", "readings")),
            (camera, ("device_id", "observed_at", "lat", "lon", "confidence", "label")),
            (satellite, ("device_id", "observed_at", "lat", "lon", "confidence")),
        )
        for field in fields
    ],
    ("device_id a number", dumps(sensor(device_id=17)), R.WRONG_TYPE, "device_id"),
    ("readings a list", dumps(sensor(readings=[1.0])), R.WRONG_TYPE, "readings"),
    (
        "reading as text",
        dumps(sensor(readings={"co_ppm": "high"})),
        R.WRONG_TYPE,
        "readings.co_ppm",
    ),
    ("epoch observed_at", dumps(sensor(observed_at=1719806400)), R.WRONG_TYPE, "observed_at"),
    ("static as text", dumps(satellite(static="yes")), R.WRONG_TYPE, "static"),
    ("source a number", dumps(sensor(source=3)), R.WRONG_TYPE, "source"),
    ("confidence as text", dumps(camera(confidence="high")), R.WRONG_TYPE, "confidence"),
    ("lat NaN", raw_json(sensor(), "lat", b"NaN"), R.BAD_COORDINATE, "lat"),
    ("lat Infinity", raw_json(sensor(), "lat", b"Infinity"), R.BAD_COORDINATE, "lat"),
    ("lon -Infinity", raw_json(sensor(), "lon", b"-Infinity"), R.BAD_COORDINATE, "lon"),
    ("lat overflowing to inf", raw_json(sensor(), "lat", b"1e400"), R.BAD_COORDINATE, "lat"),
    ("lat 90.5", dumps(sensor(lat=90.5)), R.BAD_COORDINATE, "lat"),
    ("lat -91", dumps(sensor(lat=-91)), R.BAD_COORDINATE, "lat"),
    ("lon 180.01", dumps(camera(lon=180.01)), R.BAD_COORDINATE, "lon"),
    ("lon -200", dumps(satellite(lon=-200)), R.BAD_COORDINATE, "lon"),
    ("lat as text", dumps(sensor(lat="28.95")), R.BAD_COORDINATE, "lat"),
    ("lat true", dumps(sensor(lat=True)), R.BAD_COORDINATE, "lat"),
    ("lat null", dumps(sensor(lat=None)), R.BAD_COORDINATE, "lat"),
    ("camera_lat 95", dumps(camera(camera_lat=95.0)), R.BAD_COORDINATE, "camera_lat"),
    (
        "no UTC offset",
        dumps(sensor(observed_at="2024-07-01T12:00:00")),
        R.NAIVE_TIMESTAMP,
        "observed_at",
    ),
    ("date only", dumps(sensor(observed_at="2024-07-01")), R.WRONG_TYPE, "observed_at"),
    ("unparsable time", dumps(sensor(observed_at="yesterday noon")), R.WRONG_TYPE, "observed_at"),
    ("month 13", dumps(sensor(observed_at="2024-13-01T00:00:00Z")), R.WRONG_TYPE, "observed_at"),
    (
        "offset +25:00",
        dumps(sensor(observed_at="2024-07-01T00:00:00+25:00")),
        R.WRONG_TYPE,
        "observed_at",
    ),
    ("unknown source", dumps(sensor(source="drone")), R.UNKNOWN_SOURCE, "source"),
    ("source in capitals", dumps(sensor(source="Sensor")), R.UNKNOWN_SOURCE, "source"),
    ("oversized line", dumps(sensor(note="x" * LIMIT)), R.OVERSIZED_LINE, None),
    ("camera confidence 1.5", dumps(camera(confidence=1.5)), R.INVALID_VALUE, "confidence"),
    ("sensor confidence -0.1", dumps(sensor(confidence=-0.1)), R.INVALID_VALUE, "confidence"),
    ("confidence NaN", raw_json(camera(), "confidence", b"NaN"), R.INVALID_VALUE, "confidence"),
    (
        "reading NaN",
        dumps(sensor()).replace(b'"co_ppm":2.1', b'"co_ppm":NaN'),
        R.INVALID_VALUE,
        "readings.co_ppm",
    ),
    ("unknown camera label", dumps(camera(label="fog")), R.INVALID_VALUE, "label"),
    ("empty device_id", dumps(sensor(device_id="")), R.INVALID_VALUE, "device_id"),
    ("empty id", dumps(sensor(id="")), R.INVALID_VALUE, "id"),
    ("bearing 400", dumps(camera(bearing_deg=400)), R.INVALID_VALUE, "bearing_deg"),
    ("scan_km 0", dumps(satellite(scan_km=0)), R.INVALID_VALUE, "scan_km"),
    ("two records on one line", dumps(sensor()) + b"," + dumps(camera()), R.MALFORMED_JSON, None),
]


@pytest.mark.parametrize(
    ("line", "reason", "field"),
    [pytest.param(line, reason, field, id=name) for name, line, reason, field in BAD_LINES],
)
def test_bad_line_is_rejected_with_reason_and_neighbours_survive(
    line: bytes, reason: RejectReason, field: str | None
) -> None:
    lines = [BEFORE, line, AFTER]
    offsets = [0, len(BEFORE) + 1, len(BEFORE) + len(line) + 2]

    detections, kept, rejects = validate_lines(
        lines, "in.jsonl", first_line=10, offsets=offsets, max_line_bytes=LIMIT
    )

    assert [d["device_id"] for d in detections] == ["before", "after"]
    assert kept == [0, 2]
    assert len(rejects) == 1
    reject = rejects[0]
    assert (reject.reason, reject.field) == (reason, field)
    assert (reject.origin, reject.line, reject.offset) == ("in.jsonl", 11, offsets[1])
    assert reject.raw == line.decode("utf-8", errors="replace")[:200]
    if field is not None:
        assert repr(field) in reject.message


def test_every_bad_line_gets_the_same_verdict_among_others() -> None:
    """All the bad lines at once, between valid ones, across several sub-batches."""
    lines: list[bytes] = []
    expected = {}
    for n, (_, line, reason, field) in enumerate(BAD_LINES):
        lines.append(dumps(sensor(id=f"ok-{n}")))
        expected[len(lines)] = (reason, field)
        lines.append(line)
    lines.append(AFTER)

    detections, kept, rejects = validate_lines(lines, "mix", max_line_bytes=LIMIT)

    assert {r.line: (r.reason, r.field) for r in rejects} == {i + 1: v for i, v in expected.items()}
    assert kept == [i for i in range(len(lines)) if i not in expected]
    assert [d.get("id") for d in detections] == [orjson.loads(lines[i]).get("id") for i in kept]


def test_a_syntax_error_costs_no_valid_record_in_a_large_batch() -> None:
    lines = [dumps(sensor(id=f"r{i}")) for i in range(SUB_BATCH * 5 + 3)]
    broken = {5, SUB_BATCH + 1, SUB_BATCH * 3, len(lines) - 1}
    for i in broken:
        lines[i] = lines[i][:-3]

    detections, kept, rejects = validate_lines(lines, "big")

    assert [r.line for r in rejects] == sorted(i + 1 for i in broken)
    assert {r.reason for r in rejects} == {R.MALFORMED_JSON}
    assert kept == [i for i in range(len(lines)) if i not in broken]
    assert [d.get("id") for d in detections] == [f"r{i}" for i in kept]


def test_a_line_split_in_two_is_two_rejects_not_one_merged_record() -> None:
    """Joined with a comma, the two halves would parse as one valid record."""
    whole = dumps(sensor(id="split"))
    cut = whole.index(b',"device_id"')
    lines = [BEFORE, whole[:cut], whole[cut + 1 :], AFTER]

    detections, kept, rejects = validate_lines(lines, "split")

    assert [(r.line, r.reason) for r in rejects] == [(2, R.MALFORMED_JSON), (3, R.MALFORMED_JSON)]
    assert kept == [0, 3]
    assert [d["device_id"] for d in detections] == ["before", "after"]


def test_blank_and_whitespace_lines_are_skipped_silently() -> None:
    lines = [b"", BEFORE, b"   ", b"\t\r", b"", AFTER, b""]

    detections, kept, rejects = validate_lines(lines, "blank")

    assert kept == [1, 5]
    assert rejects == []
    assert len(detections) == 2


def test_empty_input() -> None:
    assert validate_lines([], "nothing") == ([], [], [])


def test_oversized_line_is_not_parsed_and_says_its_size() -> None:
    line = dumps(sensor(note="x" * 100))

    _, kept, rejects = validate_lines([line, BEFORE], "big", max_line_bytes=len(line) - 1)

    assert kept == [1]
    assert rejects[0].reason == R.OVERSIZED_LINE
    assert f"{len(line)} bytes" in rejects[0].message
    assert f"{len(line) - 1} bytes allowed" in rejects[0].message


def test_message_line_is_none_for_kafka_values_with_offsets() -> None:
    values = [BEFORE, dumps(sensor(lat=123.0))]

    _, _, rejects = validate_lines(values, "detections", first_line=None, offsets=[1041, 1042])

    assert (rejects[0].line, rejects[0].offset) == (None, 1042)
    text = describe_reject(rejects[0])
    assert text.startswith("detections (byte 1042): bad_coordinate [lat]: ")
    assert "123.0" in text


def test_a_record_with_several_errors_reports_the_most_relevant_and_names_the_rest() -> None:
    record = camera(confidence=3.0, lat=100.0)
    del record["label"]

    _, _, rejects = validate_lines([dumps(record)], "multi")

    assert (rejects[0].reason, rejects[0].field) == (R.MISSING_FIELD, "label")
    assert "confidence" in rejects[0].message
    assert "lat" in rejects[0].message


def test_extra_fields_are_ignored_and_id_is_kept() -> None:
    record = sensor(id="producer-42", firmware="2.1.0", battery={"v": 3.7})

    detections, _, rejects = validate_lines([dumps(record)], "extra")

    assert rejects == []
    assert detections[0]["id"] == "producer-42"
    assert "firmware" not in detections[0]
    assert "battery" not in detections[0]


def test_values_are_validated_into_typed_fields() -> None:
    record = camera(lat=29, observed_at="2024-07-01T12:00:05.250+08:00")

    (d,), _, _ = validate_lines([dumps(record)], "types")

    assert d["lat"] == 29.0
    assert isinstance(d["lat"], float)
    offset = timezone(timedelta(hours=8))
    assert d["observed_at"] == datetime(2024, 7, 1, 12, 0, 5, 250000, tzinfo=offset)
    assert d["observed_at"].utcoffset() == timedelta(hours=8)


def _id_of(line: bytes) -> str:
    detections, _, rejects = validate_lines([line], "id")
    assert rejects == []
    return detection_id(detections[0])


def test_detection_id_is_the_producer_id_when_given() -> None:
    assert _id_of(dumps(sensor(id="abc-1"))) == "abc-1"


def test_detection_id_is_stable_across_key_order_whitespace_and_offset() -> None:
    record = satellite()
    reordered = dict(reversed(list(record.items())))
    spaced = orjson.dumps(record, option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
    as_utc = record | {"observed_at": "2024-07-01T05:31:00+00:00"}
    as_cst = record | {"observed_at": "2024-07-01T13:31:00+08:00"}
    with_nulls = record | {"instrument": None}

    ids = {
        _id_of(line)
        for line in (dumps(record), dumps(reordered), spaced, dumps(as_utc), dumps(as_cst))
    } | {_id_of(dumps(with_nulls))}

    assert len(ids) == 1
    (only,) = ids
    assert only.startswith("h-")
    assert len(only) == 2 + 24


def test_detection_id_differs_when_content_differs() -> None:
    record = sensor()
    variants = [
        record,
        record | {"lat": 28.950001},
        record | {"observed_at": "2024-07-01T12:00:01+08:00"},
        record | {"readings": {"temp_c": 31.5, "co_ppm": 2.2}},
        record | {"device_id": "qj-s-002"},
        camera(),
    ]

    ids = [_id_of(dumps(v)) for v in variants]

    assert len(set(ids)) == len(variants)


def test_detection_id_matches_what_it_documents() -> None:
    """Hash of the sorted-key JSON of the record without id, observed_at in UTC."""
    from hashlib import blake2b

    (d,), _, _ = validate_lines([dumps(sensor())], "doc")
    body = dict(d) | {"observed_at": datetime(2024, 7, 1, 4, 0, tzinfo=UTC)}
    expected = blake2b(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=12)

    assert detection_id(d) == "h-" + expected.hexdigest()


def test_batch_verdicts_equal_line_by_line_verdicts_on_mutated_lines() -> None:
    """Random byte damage to valid lines: whatever happens to a line in a batch of thousands (with
    its sub-batch failing for a neighbour's sake) is what happens to it alone."""
    rng = random.Random(20240701)
    makers = [sensor, camera, satellite]
    lines = []
    for i in range(3000):
        line = bytearray(dumps(makers[i % 3](id=f"m{i}")))
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            at = rng.randrange(len(line))
            choice = rng.random()
            if choice < 0.4:
                line[at] = rng.choice(b'{}[],:"0123456789.-eE \\aNn\xff')
            elif choice < 0.7:
                del line[at]
            else:
                line.insert(at, rng.choice(b'{}[],:"x'))
        lines.append(bytes(line))

    detections, kept, rejects = validate_lines(lines, "fuzz")

    alone = [validate_lines([line], "fuzz") for line in lines]
    assert kept == [i for i, (d, _, _) in enumerate(alone) if d]
    assert detections == [d for ds, _, _ in alone for d in ds]
    assert [(r.line, r.reason, r.field, r.message) for r in rejects] == [
        (i + 1, r.reason, r.field, r.message) for i, (_, _, rs) in enumerate(alone) for r in rs
    ]
    assert len(kept) + len(rejects) == sum(1 for line in lines if line.strip())
    assert len(kept) > len(lines) // 2
    assert {R.MALFORMED_JSON, R.WRONG_TYPE} < {r.reason for r in rejects}


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    bomb = b"[" * 5000 + b"]" * 5000

    _, kept, rejects = validate_lines([BEFORE, bomb, AFTER], "bomb")

    assert kept == [0, 2]
    assert rejects[0].reason == R.MALFORMED_JSON
    assert "recursion" in rejects[0].message


# -- event time ahead of the reader's clock (future_timestamp) ---------------------------------
# The record arrives at ARRIVAL by the reader's clock; sources.max_future (5 min) later is the
# latest event time accepted. BEFORE's and AFTER's observed_at are 2024-07-01T04:00:00/05Z.
ARRIVAL = datetime(2024, 7, 1, 4, 0, 10, tzinfo=UTC)
NOT_AFTER = ARRIVAL + timedelta(minutes=5)


def test_a_record_from_beyond_the_bound_is_rejected_as_future_timestamp() -> None:
    broken = dumps(sensor(id="ahead", observed_at="2099-01-01T00:00:00+00:00"))
    lines = [BEFORE, broken, AFTER]

    detections, kept, rejects = validate_lines(
        lines, "clock", first_line=7, offsets=[0, 10, 20], not_after=NOT_AFTER
    )

    assert [d.get("id") for d in detections] == ["before", "after"] and kept == [0, 2]
    (r,) = rejects
    assert (r.reason, r.field, r.line, r.offset) == (R.FUTURE_TIMESTAMP, "observed_at", 8, 10)
    assert "2099-01-01T00:00:00+00:00" in r.message  # the record's time
    assert "2024-07-01T04:05:10+00:00" in r.message  # and the latest one accepted
    assert r.raw == broken.decode()


def test_the_bound_itself_is_accepted_in_any_utc_offset() -> None:
    at_bound = ["2024-07-01T12:05:10+08:00", "2024-07-01T04:05:10Z", "2024-06-30T23:05:10-05:00"]
    a_second_later = ["2024-06-30T23:05:11-05:00", "2024-07-01T04:05:11Z"]
    times = [at_bound[0], a_second_later[0], at_bound[1], at_bound[2], a_second_later[1]]
    lines = [dumps(sensor(observed_at=t)) for t in times]

    for order in (lines, lines[::-1]):  # whichever offset comes first
        _, kept, rejects = validate_lines(order, "edge", not_after=NOT_AFTER)
        future = [i for i, line in enumerate(order) if line in lines[1::3]]
        assert kept == [i for i in range(5) if i not in future]
        assert [(r.line, r.reason) for r in rejects] == [
            (i + 1, R.FUTURE_TIMESTAMP) for i in future
        ]


def test_a_microsecond_past_the_bound_is_future_and_the_event_times_are_the_kept_records() -> None:
    # the bound is checked on float epoch seconds (check_lines' event-time column): a microsecond
    # either side of it, in three UTC offsets, must get the datetime comparison's verdict
    bound = datetime(2026, 12, 5, 3, 0, 0, 500_000, tzinfo=UTC)
    times = [
        bound + timedelta(microseconds=step) for step in (-1, 0, 1, 0, 1, -1, 999_999, -999_999, 1)
    ]
    zones = [timezone(timedelta(hours=h)) for h in (8, 0, -5)]
    stamps = [t.astimezone(zones[i % 3]).isoformat() for i, t in enumerate(times)]
    lines = [dumps(sensor(id=f"r{i}", observed_at=s)) for i, s in enumerate(stamps)]

    checked = check_lines(lines, "edge", not_after=bound)

    late = [i for i, t in enumerate(times) if t > bound]
    assert late == [2, 4, 6, 8]  # the data, not the code under test, says which are late
    assert checked.keys == [i for i in range(len(times)) if i not in late]
    assert [r.line for r in checked.rejects] == [i + 1 for i in late]
    assert {r.reason for r in checked.rejects} == {R.FUTURE_TIMESTAMP}
    assert checked.t is not None
    assert checked.t.tolist() == [times[k].timestamp() for k in checked.keys]
    assert check_lines(lines, "edge").t is None  # no bound: no column computed


def test_blank_lines_are_told_apart_from_oversized_ones() -> None:
    spaces = b" " * (LIMIT + 1)  # whitespace, but longer than allowed: oversized, not blank
    lines = [BEFORE, b"", spaces, b"  \t", AFTER]

    checked = check_lines(lines, "blank", max_line_bytes=LIMIT)

    assert checked.blank == [1, 3]
    assert [(r.line, r.reason) for r in checked.rejects if r.line == 3] == [(3, R.OVERSIZED_LINE)]


def test_without_a_bound_no_time_is_too_far_ahead() -> None:
    far = dumps(sensor(observed_at="2099-01-01T00:00:00+00:00"))
    assert validate_lines([far], "no clock") == validate_lines([far], "no clock", not_after=None)
    (d,), _, rejects = validate_lines([far], "no clock")
    assert rejects == [] and d["observed_at"].year == 2099


def test_a_record_bad_and_ahead_keeps_its_first_reason() -> None:
    line = dumps(sensor(observed_at="2099-01-01T00:00:00Z", lat=95.0))
    _, _, (r,) = validate_lines([line], "both", not_after=NOT_AFTER)
    assert (r.reason, r.field) == (R.BAD_COORDINATE, "lat")  # invalid first, never "future"


def test_a_naive_bound_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_lines([BEFORE], "naive", not_after=datetime(2024, 7, 1))
