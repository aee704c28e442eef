"""read_batches: format detection, line numbers and offsets, batch boundaries, unreadable files."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from firewatch.errors import InputError
from firewatch.ingest.files import Batch, read_batches, split_lines
from firewatch.ingest.validate import validate_lines
from firewatch.model import RejectReason

R = RejectReason
FIXTURES = Path(__file__).parent / "fixtures"
MIXED = FIXTURES / "mixed.jsonl"
BROKEN_CSV = FIXTURES / "firms_broken_rows.csv"
CALIFORNIA = Path(__file__).parents[2] / "data" / "firms" / "modis_c6_usa_24h_2020-10-01.csv"


def file_lines(path: Path) -> list[tuple[int, int, bytes]]:
    """(line number, offset, content without line ending) of every line, read independently."""
    out, offset = [], 0
    for number, line in enumerate(path.read_bytes().splitlines(keepends=True), start=1):
        out.append((number, offset, line.rstrip(b"\r\n")))
        offset += len(line)
    return out


def merged(batches: list[Batch]) -> Batch:
    return Batch(
        detections=[d for b in batches for d in b.detections],
        rejects=[r for b in batches for r in b.rejects],
        origin=batches[0].origin,
        records=sum(b.records for b in batches),
        bytes=sum(b.bytes for b in batches),
    )


def test_jsonl_rejects_carry_the_line_number_offset_and_text_of_their_line() -> None:
    lines = file_lines(MIXED)

    (batch,) = read_batches(MIXED)

    expected = {
        3: (R.MALFORMED_JSON, None),
        5: (R.MISSING_FIELD, "lat"),
        7: (R.NAIVE_TIMESTAMP, "observed_at"),
        8: (R.MALFORMED_JSON, None),  # not UTF-8
        11: (R.UNKNOWN_SOURCE, "source"),
    }
    assert {r.line: (r.reason, r.field) for r in batch.rejects} == expected
    by_number = {number: (offset, content) for number, offset, content in lines}
    for r in batch.rejects:
        assert r.line is not None
        offset, content = by_number[r.line]
        assert r.offset == offset
        assert r.raw == content.decode("utf-8", errors="replace")[:200]
        assert r.origin == str(MIXED)
    non_blank = [content for _, _, content in lines if content.strip()]
    assert batch.records == len(non_blank) == len(batch.detections) + len(batch.rejects)
    assert batch.bytes == MIXED.stat().st_size


def test_jsonl_valid_records_are_kept_in_order_with_extra_fields_dropped() -> None:
    lines = file_lines(MIXED)
    valid = [orjson.loads(c) for _, _, c in lines if c.strip() and _is_valid(c)]

    (batch,) = read_batches(MIXED)

    assert [d["device_id"] for d in batch.detections] == [v["device_id"] for v in valid]
    assert [d.get("id") for d in batch.detections] == [v.get("id") for v in valid]
    assert all("firmware" not in d for d in batch.detections)


def _is_valid(content: bytes) -> bool:
    detections, _, _ = validate_lines([content], "one")
    return bool(detections)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 11, 12, 5000])
def test_batch_boundaries_lose_nothing(batch_size: int) -> None:
    (whole,) = read_batches(MIXED)

    batches = list(read_batches(MIXED, batch_size=batch_size))

    assert len(batches) == -(-len(file_lines(MIXED)) // batch_size)
    combined = merged(batches)
    assert combined.detections == whole.detections
    assert combined.rejects == whole.rejects
    assert (combined.records, combined.bytes) == (whole.records, whole.bytes)
    assert all(b.records == len(b.detections) + len(b.rejects) for b in batches)


@pytest.mark.parametrize("batch_size", [1, 4, 1000])
def test_firms_csv_is_detected_and_batched(batch_size: int) -> None:
    data_rows = len(CALIFORNIA.read_bytes().splitlines()) - 1

    batches = list(read_batches(CALIFORNIA, batch_size=batch_size))

    combined = merged(batches)
    assert len(combined.detections) == combined.records == data_rows
    assert combined.rejects == []
    assert {d["source"] for d in combined.detections} == {"satellite"}
    assert combined.bytes == CALIFORNIA.stat().st_size
    assert len(batches) == -(-data_rows // batch_size)


def test_firms_csv_rejects_come_through_read_batches_with_line_numbers() -> None:
    lines = file_lines(BROKEN_CSV)

    batches = list(read_batches(BROKEN_CSV, batch_size=4))

    rejects = merged(batches).rejects
    assert [r.line for r in rejects] == sorted(r.line for r in rejects if r.line)
    by_number = {number: (offset, content) for number, offset, content in lines}
    for r in rejects:
        assert r.line is not None
        assert r.offset == by_number[r.line][0]
    assert {r.line for r in rejects} == {4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}


def test_crlf_and_byte_order_mark_in_jsonl(tmp_path: Path) -> None:
    records = [
        {
            "source": "sensor",
            "device_id": f"d{i}",
            "observed_at": "2024-07-01T00:00:00Z",
            "lat": 10.0 + i,
            "lon": 20.0,
            "readings": {"t": 1.0},
        }
        for i in range(3)
    ]
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(orjson.dumps(r) for r in records) + b"\r\n")

    (batch,) = read_batches(path)

    assert batch.rejects == []
    assert [d["device_id"] for d in batch.detections] == ["d0", "d1", "d2"]
    assert batch.bytes == path.stat().st_size


def test_oversized_line_is_skipped_and_the_next_line_is_read(tmp_path: Path) -> None:
    good = (
        b'{"source":"camera","device_id":"c","observed_at":"2024-07-01T00:00:00Z",'
        b'"lat":1.0,"lon":2.0,"confidence":0.5,"label":"flame"}'
    )
    long_line = b'{"pad":"' + b"x" * 10_000 + b'"}'
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\n".join([good, long_line, good, long_line[:257], good]) + b"\n")

    (batch,) = read_batches(path, max_line_bytes=256)

    assert len(batch.detections) == 3
    assert [(r.line, r.reason) for r in batch.rejects] == [
        (2, R.OVERSIZED_LINE),
        (4, R.OVERSIZED_LINE),
    ]
    assert batch.rejects[0].offset == len(good) + 1
    assert batch.rejects[1].offset == 2 * len(good) + len(long_line) + 3
    assert batch.rejects[0].message == "line is longer than the 256 bytes allowed: not parsed"
    assert batch.rejects[1].message.startswith(f"line is {257} bytes, longer than the 256 bytes")
    assert batch.rejects[0].raw == long_line[:200].decode()
    assert batch.bytes == path.stat().st_size


def test_empty_and_blank_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n\n  \n")

    assert list(read_batches(empty)) == []
    (batch,) = read_batches(blank)
    assert (batch.records, batch.detections, batch.rejects) == (0, [], [])


def test_a_binary_file_is_all_rejects_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "image.jsonl"
    path.write_bytes(bytes(range(256)) * 4)

    batches = list(read_batches(path))

    combined = merged(batches)
    assert combined.detections == []
    assert combined.records == len(combined.rejects) > 0
    assert {r.reason for r in combined.rejects} == {R.MALFORMED_JSON}
    assert combined.bytes == path.stat().st_size


def test_unreadable_inputs_raise_input_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.jsonl: cannot read"):
        list(read_batches(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError, match=re.escape(str(tmp_path))):
        list(read_batches(tmp_path))


def test_split_lines_gives_lines_and_offsets_for_validate_lines() -> None:
    body = MIXED.read_bytes()
    expected = file_lines(MIXED)

    lines, offsets = split_lines(body)

    assert lines == [content for _, _, content in expected]
    assert offsets == [offset for _, offset, _ in expected]
    _, _, rejects = validate_lines(lines, "upload", offsets=offsets)
    (batch,) = read_batches(MIXED)
    assert [(r.line, r.offset, r.reason) for r in rejects] == [
        (r.line, r.offset, r.reason) for r in batch.rejects
    ]


def test_read_batches_rejects_what_was_observed_after_not_after(tmp_path: Path) -> None:
    """A FIRMS file and a JSONL file read with the clock bound of a reader at 12:00 UTC on
    2020-10-01: rows acquired later (the bound is inclusive) are future_timestamp, named by the
    CSV column that holds the time."""
    from datetime import UTC, datetime

    bound = datetime(2020, 10, 1, 12, 0, tzinfo=UTC)
    rows = CALIFORNIA.read_text().splitlines()[1:]
    late = [
        n
        for n, row in enumerate(rows, start=2)
        if (row.split(",")[5], row.split(",")[6].zfill(4)) > ("2020-10-01", "1200")
    ]
    assert 0 < len(late) < len(rows)  # the file spans the bound

    batch = merged(list(read_batches(CALIFORNIA, batch_size=500, not_after=bound)))

    assert [r.line for r in batch.rejects] == late
    assert {(r.reason, r.field) for r in batch.rejects} == {(R.FUTURE_TIMESTAMP, "acq_date")}
    assert batch.rejects[0].message.startswith("column 'acq_date' is 2020-10-01T")
    assert len(batch.detections) == len(rows) - len(late)
    assert all(d["observed_at"] <= bound for d in batch.detections)

    jsonl = tmp_path / "ahead.jsonl"
    record = orjson.loads(MIXED.read_bytes().splitlines()[0])
    ahead = record | {"observed_at": "2099-01-01T00:00:00+00:00"}
    jsonl.write_bytes(orjson.dumps(record) + b"\n" + orjson.dumps(ahead) + b"\n")
    (batch,) = read_batches(jsonl, not_after=bound.replace(year=2030))
    assert [(r.line, r.reason, r.field) for r in batch.rejects] == [
        (2, R.FUTURE_TIMESTAMP, "observed_at")
    ]
    # the bound's check made the kept detections' event times: they come with the batch, for
    # Engine.process (a FIRMS file's do not: its rows are checked as datetimes)
    assert batch.t is not None
    assert batch.t.tolist() == [d["observed_at"].timestamp() for d in batch.detections]
    assert all(b.t is None for b in read_batches(CALIFORNIA, batch_size=500, not_after=bound))
    (batch,) = read_batches(jsonl)  # no bound: nothing is too far ahead
    assert batch.rejects == [] and len(batch.detections) == 2 and batch.t is None
