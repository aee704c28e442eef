"""The incidents stage takes each located partition's messages in offset order, none skipped.

A region's engine state covers every located message up to the offset its snapshot was taken at
(checkpoint.py acks them then); its successor restores that state and must take every message
after the committed offset, in order. The Faust consumer does not always do that: right after a
rebalance it can hand the stream a message prefetched before it, past the committed offset
(faust-streaming/faust issues 216 and 221). Seen here (2026-12-04, README Faults): a successor
whose first message of a partition was about 180 offsets past the committed one (the records
between never reached its engine, its devices were called down for silences they did not have,
and Faust never committed that partition again), and 3 of 8 two-worker runs with gaps of 11 to
25 messages.

`Continuity` checks every message the stage is given against the offset it expects next: the
group's committed offset (the log's start when there is none, or when retention removed what it
points at) for the first message of a partition after an assignment, the offset after the last
one taken since. A message past that is a gap: it is not taken, and the partition is sought back
to the expected offset (said in the log, with the partition and both offsets), again at each
batch that is still past it, until the expected message comes. A message before it was already
taken (or is covered by the commit) and is not taken again. Messages left out are never acked,
so no commit passes them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

Offsets = Callable[[set[int]], Awaitable[dict[int, int]]]


class Continuity:
    def __init__(
        self,
        where: str,
        committed: Offsets,
        earliest: Offsets,
        seek: Callable[[dict[int, int]], Awaitable[None]],
    ) -> None:
        self.where = where  # the topic, for the log
        self.committed = committed  # partitions -> the group's committed offsets (those it has)
        self.earliest = earliest  # partitions -> the first offset each log still has
        self.seek = seek  # partitions -> offsets to read from next
        self.taken: dict[int, int] = {}  # partition -> offset after the last one taken
        self.seeking: dict[int, int] = {}  # partition -> offset sought back to, not yet given
        self.gaps = 0  # gaps found, each said once in the log

    async def admit(self, batch: Sequence[Any]) -> list[Any]:
        """The messages of `batch` (Faust events) to take, in order; seeks back past a gap."""
        new = {e.message.partition for e in batch} - self.taken.keys()
        if new:
            self.taken.update(await self._start(new))
        kept: list[Any] = []
        behind: dict[int, tuple[int, int]] = {}  # partition -> (expected, first offset given)
        for event in batch:
            p, offset = event.message.partition, event.message.offset
            want = self.taken[p]
            if offset == want:
                kept.append(event)
                self.taken[p] = offset + 1
                self.seeking.pop(p, None)
            elif offset > want and p not in behind:
                behind[p] = (want, offset)
        if behind:
            await self._back(behind)
        return kept

    def forget(self, partitions: set[int]) -> None:
        """Revoked partitions: after the next assignment they start from the commit again."""
        for p in partitions:
            self.taken.pop(p, None)
            self.seeking.pop(p, None)

    async def _start(self, partitions: set[int]) -> dict[int, int]:
        committed = await self.committed(partitions)
        earliest = await self.earliest(partitions)
        return {p: max(committed.get(p, 0), earliest.get(p, 0)) for p in partitions}

    async def _back(self, behind: dict[int, tuple[int, int]]) -> None:
        """Seek these partitions back to the offset each expects (a message given before the
        seek took effect, still past it, seeks again; said once)."""
        earliest = await self.earliest(set(behind))
        for p, (want, given) in sorted(behind.items()):
            start = earliest.get(p, 0)
            if start > want:  # removed by retention: cannot be read again
                log.warning(
                    "%s[%d]: offsets %d to %d were removed by retention before they were taken; "
                    "going on from %d",
                    *(self.where, p, want, start - 1, start),
                )
                self.taken[p] = want = start
            if given > want and self.seeking.get(p) != want:
                self.gaps += 1
                log.error(
                    "%s[%d]: given offset %d while %d is next: %d messages skipped by the "
                    "consumer; not taken, seeking back to %d",
                    *(self.where, p, given, want, given - want, want),
                )
            self.seeking[p] = want
        await self.seek({p: self.taken[p] for p in behind})
