"""FIRMS CSV rows to satellite detections: the mapping, the shipped files, and broken rows."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firewatch.errors import InputError
from firewatch.ingest.firms import is_firms_header, read_firms
from firewatch.ingest.validate import detection_id
from firewatch.model import AnyDetection, Reject, RejectReason

R = RejectReason
DATA = Path(__file__).parents[2] / "data" / "firms"
CALIFORNIA = DATA / "modis_c6_usa_24h_2020-10-01.csv"
VIIRS = DATA / "viirs_snpp_usa_7d_2025-11-05.csv"
AUSTRALIA = DATA / "modis_archive_australia_2019-08_slice.csv"
BROKEN = Path(__file__).parent / "fixtures" / "firms_broken_rows.csv"


def read_all(path: Path, batch_size: int = 5000) -> tuple[list[AnyDetection], list[Reject]]:
    detections: list[AnyDetection] = []
    rejects: list[Reject] = []
    for batch_detections, batch_rejects in read_firms(path, batch_size=batch_size):
        detections += batch_detections
        rejects += batch_rejects
    return detections, rejects


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_california_modis_gives_every_row_and_maps_the_first() -> None:
    rows = csv_rows(CALIFORNIA)

    detections, rejects = read_all(CALIFORNIA)

    assert rejects == []
    assert len(detections) == len(rows) == 2575
    first, row = detections[0], rows[0]
    assert first["source"] == "satellite"
    assert first["lat"] == float(row["latitude"])
    assert first["lon"] == float(row["longitude"])
    hhmm = row["acq_time"].zfill(4)
    day = datetime.strptime(row["acq_date"], "%Y-%m-%d")
    assert first["observed_at"] == day.replace(hour=int(hhmm[:2]), minute=int(hhmm[2:]), tzinfo=UTC)
    assert first.get("confidence") == pytest.approx(int(row["confidence"]) / 100)
    assert first.get("frp_mw") == float(row["frp"])
    assert first.get("scan_km") == float(row["scan"])
    assert first.get("track_km") == float(row["track"])
    assert row["satellite"] == "T"
    assert first.get("satellite") == "Terra"
    assert first.get("instrument") == "MODIS"  # no instrument column: there is a brightness one
    assert first["device_id"] == "Terra-MODIS"
    assert first.get("static") is False
    assert "id" not in first


def test_every_california_row_maps_its_coordinates_time_and_satellite() -> None:
    rows = csv_rows(CALIFORNIA)

    detections, _ = read_all(CALIFORNIA, batch_size=1000)

    satellites = {"T": "Terra", "A": "Aqua"}
    for d, row in zip(detections, rows, strict=True):
        assert (d["lat"], d["lon"]) == (float(row["latitude"]), float(row["longitude"]))
        assert d["observed_at"].strftime("%Y-%m-%d%H%M") == row["acq_date"] + row["acq_time"]
        assert d["device_id"] == f"{satellites[row['satellite']]}-MODIS"


def test_viirs_confidence_classes_map_to_the_modis_bands() -> None:
    rows = csv_rows(VIIRS)
    classes = {"low": 0.2, "l": 0.2, "nominal": 0.6, "n": 0.6, "high": 0.9, "h": 0.9}

    detections, rejects = read_all(VIIRS)

    assert rejects == []
    assert len(detections) == len(rows)
    assert [d.get("confidence") for d in detections] == [classes[r["confidence"]] for r in rows]
    assert Counter(d.get("confidence") for d in detections) == Counter(
        classes[r["confidence"]] for r in rows
    )
    assert {d["device_id"] for d in detections} == {"SNPP-VIIRS"}
    assert {d.get("instrument") for d in detections} == {"VIIRS"}


def test_australian_archive_maps_type_2_to_static_and_reads_crlf() -> None:
    raw = AUSTRALIA.read_bytes()
    rows = csv_rows(AUSTRALIA)
    assert b"\r\n" in raw  # the file is as published, with CRLF line endings

    detections, rejects = read_all(AUSTRALIA)

    assert rejects == []
    assert len(detections) == len(rows)
    static_rows = sum(1 for r in rows if r["type"] == "2")
    assert static_rows > 0
    assert sum(1 for d in detections if d.get("static")) == static_rows
    for d, row in zip(detections, rows, strict=True):
        assert d.get("static") is (row["type"] == "2")  # type 3 (offshore) stays False
        assert d.get("instrument") == row["instrument"]
        assert d["device_id"] == f"{row['satellite']}-{row['instrument']}"
        assert "\r" not in str(d.get("satellite"))
    assert any(r["type"] == "3" for r in rows)


def test_broken_rows_are_rejected_with_their_line_and_column_and_the_rest_kept() -> None:
    expected = {
        4: (R.MALFORMED_JSON, None),  # 12 cells
        5: (R.BAD_COORDINATE, "latitude"),  # abc
        7: (R.BAD_COORDINATE, "latitude"),  # 95.2
        8: (R.WRONG_TYPE, "acq_date"),  # month 13
        9: (R.INVALID_VALUE, "acq_time"),  # 2561
        10: (R.WRONG_TYPE, "acq_time"),  # 4a5
        11: (R.INVALID_VALUE, "confidence"),  # 150 %
        12: (R.WRONG_TYPE, "confidence"),  # maybe
        13: (R.MISSING_FIELD, "satellite"),  # empty
        14: (R.MALFORMED_JSON, None),  # not UTF-8
        15: (R.INVALID_VALUE, "scan"),  # 0 km
        16: (R.MALFORMED_JSON, None),  # 14 cells
    }
    lines = BROKEN.read_bytes().split(b"\n")
    data_lines = [n for n, line in enumerate(lines, start=1) if n > 1 and line.strip()]

    for batch_size in (3, 5000):
        detections, rejects = read_all(BROKEN, batch_size=batch_size)

        assert {r.line: (r.reason, r.field) for r in rejects} == expected
        assert len(detections) == len(data_lines) - len(expected)
        for r in rejects:
            assert r.line is not None
            assert r.offset == sum(len(line) + 1 for line in lines[: r.line - 1])
            assert r.origin == str(BROKEN)
            assert r.raw == lines[r.line - 1].decode("utf-8", errors="replace")
            assert r.field is None or repr(r.field) in r.message


def test_acq_time_without_zero_padding(tmp_path: Path) -> None:
    header = CALIFORNIA.read_text().splitlines()[0]
    row = "30.943,-88.017,303.2,1,1,2020-09-30,{},A,54,6.0NRT,286.7,7.7,N"
    path = tmp_path / "short_times.csv"
    times = ["56", "5", "105", "1230", "0000"]
    path.write_text("\n".join([header, *(row.format(t) for t in times)]) + "\n")

    detections, rejects = read_all(path)

    assert rejects == []
    assert [d["observed_at"].strftime("%H:%M") for d in detections] == [
        "00:56",
        "00:05",
        "01:05",
        "12:30",
        "00:00",
    ]


def test_byte_order_mark_and_spelled_out_names(tmp_path: Path) -> None:
    header = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence"
    path = tmp_path / "bom.csv"
    rows = [
        "10.5,20.5,330.1,0.4,0.4,2024-01-02,0130,N20,h",
        "10.6,20.6,330.1,0.4,0.4,2024-01-02,0130,N,l",
    ]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([header, *rows, ""]).encode())

    detections, rejects = read_all(path)

    assert rejects == []
    assert [d["device_id"] for d in detections] == ["NOAA20-VIIRS", "SNPP-VIIRS"]
    assert [d.get("confidence") for d in detections] == [0.9, 0.2]
    assert [d.get("static") for d in detections] == [False, False]


def test_detection_ids_of_firms_rows_are_content_hashes_stable_across_reads() -> None:
    first, _ = read_all(CALIFORNIA)
    second, _ = read_all(CALIFORNIA, batch_size=7)

    ids = [detection_id(d) for d in first]

    assert ids == [detection_id(d) for d in second]
    assert all(i.startswith("h-") for i in ids)
    # rows that differ in a mapped column get distinct ids; rows that do not share theirs
    mapped = ("latitude", "longitude", "acq_date", "acq_time", "satellite", "confidence", "frp")
    distinct = {tuple(r[c] for c in (*mapped, "scan", "track")) for r in csv_rows(CALIFORNIA)}
    assert len(set(ids)) == len(distinct)


@pytest.mark.parametrize("path", [CALIFORNIA, VIIRS, AUSTRALIA])
def test_shipped_headers_are_recognised(path: Path) -> None:
    first_line = path.read_bytes().split(b"\n")[0].decode()

    assert is_firms_header(first_line)
    assert is_firms_header("\ufeff" + first_line.upper())


@pytest.mark.parametrize(
    "first_line",
    [
        '{"source":"satellite","latitude":1,"longitude":2,"acq_date":"x","acq_time":"y"}',
        "lat,lon,date,time,satellite,confidence",
        "latitude,longitude,acq_date,acq_time",  # no satellite, no confidence
        "",
    ],
)
def test_other_first_lines_are_not_firms(first_line: str) -> None:
    assert not is_firms_header(first_line)


def test_read_firms_refuses_a_file_that_is_not_firms(tmp_path: Path) -> None:
    path = tmp_path / "detections.jsonl"
    path.write_text('{"source": "sensor"}\n')

    with pytest.raises(InputError, match=r"detections\.jsonl: not a FIRMS CSV"):
        read_all(path)


def test_read_firms_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.csv: cannot read"):
        read_all(tmp_path / "nowhere.csv")


def test_quoted_cells_are_read_as_csv(tmp_path: Path) -> None:
    header = "latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,confidence"
    rows = [
        '"38.5","-121.5","330.1","1.0","1.0","2020-09-30","2105","Aqua","77"',
        '38.6,-121.6,330.1,1.0,1.0,2020-09-30,2105,"A,qua",77',  # the quoted comma is one cell
        '38.7,-121.7,330.1,1.0,1.0,2020-09-30,2105,A,77,"extra, cell"',
    ]
    path = tmp_path / "quoted.csv"
    path.write_text("\n".join([header, *rows]) + "\n")

    detections, rejects = read_all(path)

    assert [(d["lat"], d["device_id"]) for d in detections] == [
        (38.5, "Aqua-MODIS"),
        (38.6, "A,qua-MODIS"),
    ]
    assert [(r.line, r.reason) for r in rejects] == [(4, R.MALFORMED_JSON)]
    assert "10 cells" in rejects[0].message
