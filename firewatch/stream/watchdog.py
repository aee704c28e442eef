"""A worker whose table recovery has stalled leaves, so that its supervisor starts a fresh one.

Faust recovers a worker's state table from its changelog after every rebalance. Under faults (a
worker killed during a rebalance, the broker away while a recovery runs) Faust 0.11-0.15 can
stay in recovery for ever, with changelog records left to read and none arriving ("No event
received for active tp ..."): the worker then holds its located partitions and processes nothing.
A fresh process recovers at once. So when recovery makes no progress for `after` seconds while
records remain, the worker logs why and exits with EXIT_STALLED (75, EX_TEMPFAIL) for its
supervisor (compose `restart:`, systemd, Kubernetes) to start it again; it is safe to stop a
worker at any moment (state snapshots, offsets acknowledged only after what they cover).
"""

from __future__ import annotations

from typing import Any

EXIT_STALLED = 75  # EX_TEMPFAIL: start me again


class RecoveryWatch:
    """Tells whether a Faust table recovery has made no progress for `after` seconds."""

    def __init__(self, recovery: Any, after: float) -> None:
        self.recovery = recovery  # faust.tables.recovery.Recovery
        self.after = after
        self.offsets: dict[Any, int] = {}
        self.since: float | None = None  # when progress was last seen

    def check(self, now: float) -> str | None:
        """None while all is well; else what is stalled, to log before leaving."""
        if not self.recovery.in_recovery:
            self.since = None
            return None
        offsets = dict(self.recovery.active_offsets)
        remaining = {tp: n for tp, n in self.recovery.active_remaining().items() if n > 0}
        if self.since is None or offsets != self.offsets or not remaining:
            self.since, self.offsets = now, offsets
            return None
        if now - self.since < self.after:
            return None
        left = ", ".join(f"{tp.topic}[{tp.partition}]: {n}" for tp, n in sorted(remaining.items()))
        return f"table recovery made no progress for {now - self.since:.0f} s ({left} to read)"
