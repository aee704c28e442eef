"""The machine a benchmark ran on, for the line every result is printed with."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime


def describe() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
