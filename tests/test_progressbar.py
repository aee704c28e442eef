"""Progress on stderr (firewatch/progressbar.py, rich): on a terminal the bar ends at 100% with the
record count; a pipe or a log file gets nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from firewatch.progressbar import Bar
from firewatch.replay import replay
from firewatch.runtime import open_engine
from firewatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIRMS = ROOT / "data/firms/modis_c6_usa_24h_2020-10-01.csv"
GRID = ROOT / "data/grids/qujiang.geojson"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_replay_on_a_terminal_shows_its_bar_to_the_end(tmp_path: Path) -> None:
    settings = Settings(
        rules=ROOT / "rules", cache_dir=None, grid=ROOT / "data/grids/qujiang.geojson"
    )
    terminal = Terminal()
    summary = replay(open_engine(settings), [FIRMS], tmp_path / "events.jsonl", progress=terminal)
    shown = terminal.getvalue()
    with FIRMS.open() as f:
        rows = len(list(csv.DictReader(f)))  # every row is a record, in the grid or not
    assert summary.stats["records"] == rows
    assert "replay" in shown and "100%" in shown and f"{rows:,} records" in shown


def test_a_pipe_gets_no_progress(tmp_path: Path) -> None:
    pipe = io.StringIO()
    settings = Settings(
        rules=ROOT / "rules", cache_dir=None, grid=ROOT / "data/grids/qujiang.geojson"
    )
    replay(open_engine(settings), [FIRMS], tmp_path / "events.jsonl", progress=pipe)
    for stream in (pipe, None):  # a pipe, or no stream asked for
        with Bar(stream, "produce to firewatch.detections") as bar:
            bar.update(10_000)
    assert pipe.getvalue() == ""


def test_without_a_total_the_bar_counts_records() -> None:
    terminal = Terminal()
    with Bar(terminal, "produce to firewatch.detections") as bar:
        bar.update(10_000)
        bar.update(12_345)
    shown = terminal.getvalue()
    assert "produce to firewatch.detections" in shown and "12,345 records" in shown
    assert "%" not in shown
