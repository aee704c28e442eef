"""benchmarks/machine.py write_section: a benchmark rewrites its own section of the README, and
keeps the other sections and the dated subsections written by hand under its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import machine


def test_a_section_is_replaced_and_its_subsections_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Benchmarks\n\n## Engine\n\nold engine\n\n"
        "## Stream\n\nold table\n\n### 2026-12-05: a run by hand\n\nits figures\n\n"
        "## API\n\napi\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(machine, "README", readme)
    machine.write_section("Stream", "## Stream\n\nnew table\n")
    machine.write_section("Scale", "## Scale\n\nscale\n")
    assert readme.read_text(encoding="utf-8") == (
        "# Benchmarks\n\n## Engine\n\nold engine\n\n"
        "## Stream\n\nnew table\n\n### 2026-12-05: a run by hand\n\nits figures\n\n"
        "## API\n\napi\n\n## Scale\n\nscale\n"
    )
