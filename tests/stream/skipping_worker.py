"""`firewatch worker` as a fault injection: its Faust consumer drops, once, the first messages
of one located partition it fetches (offsets below FIREWATCH_TEST_SKIP, partition
FIREWATCH_TEST_SKIP_PARTITION), as a successor's consumer did in a CI run of 2026-12-04 (README
Faults). Those messages reach the incidents stage only if it notices the gap and seeks back.

    python tests/stream/skipping_worker.py worker [options]
"""

from __future__ import annotations

import os
import sys
from typing import Any

from faust.transport.consumer import ThreadDelegateConsumer

from firewatch.cli import main

TOPIC = os.environ["FIREWATCH_TOPIC_LOCATED"]
PARTITION = int(os.environ.get("FIREWATCH_TEST_SKIP_PARTITION", "1"))
BELOW = int(os.environ["FIREWATCH_TEST_SKIP"])
dropped: set[int] = set()  # each offset is dropped once: fetched again, it passes
fetch = ThreadDelegateConsumer._getmany


async def _getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
    records = await fetch(self, active_partitions, timeout)
    for tp, messages in records.items():
        if tp.topic == TOPIC and tp.partition == PARTITION:
            kept = [m for m in messages if m.offset >= BELOW or m.offset in dropped]
            dropped.update(m.offset for m in messages if m.offset < BELOW)
            if len(kept) < len(messages):
                print(
                    f"skipping_worker: dropped {len(messages) - len(kept)} messages of {tp}",
                    flush=True,
                )
            records[tp] = kept
    return records


ThreadDelegateConsumer._getmany = _getmany  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
