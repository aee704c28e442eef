"""How far in event time each detection partition has been forwarded: the locate stage's side of
the watermark, told to every located partition in progress markers.

A located partition interleaves records of every detection partition, so a region's watermark
is the least advanced detection partition's progress (stages.Worker.watermark). A partition
without devices, or whose devices went silent, would hold that back for ever; so a partition
read to its end may *claim* progress it has not seen. What it may claim is decided by the
broker's clock, never by when this worker happened to fetch what:

- "read to its end" is the partition's end offset asked afresh of the broker (ListOffsets), not
  the end the last fetch reported: records already on the broker are never skipped over;
- the claim is the latest event time of the records appended to the detections topic at least
  `quiet_after` seconds (by their Kafka timestamps: append time on the topics firewatch creates)
  before the newest record read so far. A record that reaches the quiet partition later was
  appended after the check, so at least `quiet_after` seconds after everything claimed; it can be
  late only if its producer sends it that long after records that are newer in event time by
  more than the grace period.

So a worker that idles before input, or reads one partition long before another, claims nothing
it has not been sent, and a file produced at any rate gives the same claims. When input ends,
what was appended in its last `quiet_after` seconds is claimed by nobody: the idle release
(worker.py) ends the stream as a replay's flush does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Set

import orjson


class Progress:
    def __init__(self, quiet_after: float) -> None:
        self.quiet_after_ms = int(quiet_after * 1000)
        self.forwarded: dict[int, float] = {}  # detection partition -> latest event time sent
        self.newest_ts = -1  # the newest Kafka timestamp (ms) of a record read
        self.recent: list[tuple[int, float]] = []  # (batch's newest timestamp, its latest time)
        self.settled = -math.inf  # latest event time appended quiet_after before newest_ts

    def record(self, partition: int, event_time: float, timestamp: int) -> None:
        """A batch of `partition` was forwarded: its latest event time and newest timestamp."""
        self.forwarded[partition] = max(self.forwarded.get(partition, event_time), event_time)
        self.newest_ts = max(self.newest_ts, timestamp)
        self.recent.append((timestamp, event_time))
        self._settle()  # so `recent` holds only the last quiet_after, caught up or not

    def claimable(self) -> float | None:
        """The latest event time of the batches appended `quiet_after` before the newest record
        read (None: none yet). A batch counts by its newest timestamp: it claims less, not more."""
        self._settle()
        return None if self.settled == -math.inf else self.settled

    def _settle(self) -> None:
        """Fold the batches appended quiet_after before the newest record into `settled`."""
        horizon = self.newest_ts - self.quiet_after_ms
        if all(ts > horizon for ts, _ in self.recent):
            return
        keep = []
        for ts, t in self.recent:
            if ts <= horizon:
                self.settled = max(self.settled, t)
            else:
                keep.append((ts, t))
        self.recent = keep

    def marker(self, caught_up: Set[int] = frozenset(), sources: int | None = None) -> bytes | None:
        """Every detection partition's progress, for every located partition (None: no news).

        A partition in `caught_up` (at the broker's end offset) reports at least what is
        claimable; `sources`, the detection topic's partition count, is how many partitions a
        watermark waits to hear from. With `sources` and nothing to claim, partitions read to
        their end still get a marker of `n` alone: a heartbeat, which tells the incidents stage
        that it has taken its partitions to their end (the idle release waits for that)."""
        progress = dict(self.forwarded)
        claim = self.claimable() if caught_up else None
        if claim is not None:
            progress.update((p, max(progress.get(p, claim), claim)) for p in caught_up)
        if not progress:
            return orjson.dumps({"n": sources}) if sources and caught_up else None
        body: dict[str, float | int] = {str(p): t for p, t in sorted(progress.items())}
        if sources:
            body["n"] = sources
        return orjson.dumps(body)

    def forget(self, partitions: Iterable[int]) -> None:
        """Detection partitions taken away by a rebalance: their new owner reports them."""
        for p in partitions:
            self.forwarded.pop(p, None)
