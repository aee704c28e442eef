"""The locate stage's progress: what a partition read to its end may claim (stream/progress.py)."""

from __future__ import annotations

from firewatch.stream.progress import Progress


def test_what_a_read_out_partition_claims_and_how_much_is_kept_while_behind() -> None:
    progress = Progress(quiet_after=10)  # seconds
    # a worker that never catches up: a batch every 100 ms for 10 minutes, 1 s of event time each
    for n in range(6000):
        progress.record(n % 4, 1_000.0 + n, timestamp=n * 100)
        assert len(progress.recent) <= 10 * 10 + 1  # the last quiet_after's batches, not all
    # appended 10 s before the newest record read: batch 5899, whose latest event time is 6899
    assert progress.claimable() == 1_000.0 + 5899
    # a read-out partition claims that, or its own latest when more; the others report theirs
    marker = progress.marker(caught_up={2, 5})
    assert marker == b'{"0":6996.0,"1":6997.0,"2":6998.0,"3":6999.0,"5":6899.0}'
