"""Progress of the long-running commands (`replay`, `produce`) on stderr: rich's progress bar,
shown only when the stream is a terminal (a pipe or a log file gets nothing, not a line per
update)."""

from __future__ import annotations

from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

RECORDS = "{task.fields[records]:>12,} records"


class Bar:
    """One task's progress: the records handled so far and the time, and with a `total` (bytes of
    input, known beforehand) a bar, its percentage and the time left."""

    def __init__(
        self, stream: IO[str] | None, description: str, total: float | None = None
    ) -> None:
        """`stream` None: nothing is shown (a caller that did not ask for progress)."""
        self.enabled = stream is not None and stream.isatty()
        columns: list[ProgressColumn] = [TextColumn(description)]
        if total is not None:
            columns += [BarColumn(), TaskProgressColumn()]
        columns += [TextColumn(RECORDS), TimeElapsedColumn()]
        if total is not None:
            columns.append(TimeRemainingColumn())
        console = Console(file=stream, highlight=False)
        self._progress = Progress(*columns, console=console, disable=not self.enabled)
        self._task = self._progress.add_task(description, total=total, records=0)

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, records: int, advance: float = 0) -> None:
        """`records` handled so far; `advance` more of the total done."""
        self._progress.update(self._task, advance=advance, records=records)
