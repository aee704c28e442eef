"""Continuity (stream/continuity.py): each located partition's messages taken in offset order
from the committed offset; a gap is not taken and the partition is sought back."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from firewatch.stream.continuity import Continuity


def _events(partition: int, *offsets: int) -> list[Any]:
    return [
        SimpleNamespace(message=SimpleNamespace(partition=partition, offset=o)) for o in offsets
    ]


def _offsets(events: list[Any]) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for e in events]


class Broker:
    """The group's commits, each log's start, and the seeks asked for."""

    def __init__(self, committed: dict[int, int], earliest: dict[int, int]) -> None:
        self.commit, self.start = committed, earliest
        self.seeks: list[dict[int, int]] = []

    async def committed(self, partitions: set[int]) -> dict[int, int]:
        return {p: o for p, o in self.commit.items() if p in partitions}

    async def earliest(self, partitions: set[int]) -> dict[int, int]:
        return {p: self.start.get(p, 0) for p in partitions}

    async def seek(self, offsets: dict[int, int]) -> None:
        self.seeks.append(dict(offsets))

    def continuity(self) -> Continuity:
        return Continuity("located", self.committed, self.earliest, self.seek)


def test_messages_from_the_commit_in_order_are_taken() -> None:
    broker = Broker({0: 5}, {})
    c = broker.continuity()
    batch = _events(0, 5, 6, 7) + _events(1, 0, 1)  # partition 1: nothing committed, log from 0
    assert _offsets(asyncio.run(c.admit(batch))) == _offsets(batch)
    assert c.taken == {0: 8, 1: 2} and broker.seeks == [] and c.gaps == 0


def test_a_gap_is_not_taken_and_sought_back_until_the_expected_message_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker({1: 92}, {})
    c = broker.continuity()

    async def run() -> list[list[tuple[int, int]]]:
        taken = [await c.admit(_events(1, 271, 272) + _events(0, 0, 1))]
        taken.append(await c.admit(_events(1, 273)))  # given before the seek took effect
        taken.append(await c.admit(_events(1, 92, 93, 271)))  # read again from the commit
        return [_offsets(t) for t in taken]

    with caplog.at_level(logging.ERROR):
        taken = asyncio.run(run())
    assert taken == [[(0, 0), (0, 1)], [], [(1, 92), (1, 93)]]
    assert broker.seeks == [{1: 92}, {1: 92}, {1: 94}]
    assert c.gaps == 2  # 92 -> 271, then 94 -> 271: each said once
    assert "located[1]: given offset 271 while 92 is next: 179 messages skipped" in caplog.text


def test_what_was_taken_or_committed_is_not_taken_again() -> None:
    broker = Broker({0: 10}, {})
    c = broker.continuity()
    assert _offsets(asyncio.run(c.admit(_events(0, 8, 9, 10, 10, 11)))) == [(0, 10), (0, 11)]
    assert broker.seeks == []


def test_offsets_removed_by_retention_are_passed_over_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker({0: 10, 1: 10}, {1: 50})
    c = broker.continuity()
    with caplog.at_level(logging.WARNING):
        # partition 1's commit points at what retention removed: the log's start is expected
        assert _offsets(asyncio.run(c.admit(_events(0, 10, 11) + _events(1, 50)))) == [
            (0, 10),
            (0, 11),
            (1, 50),
        ]
        broker.start[0] = 50  # retention removed 12..49 of partition 0 before they were read
        assert asyncio.run(c.admit(_events(0, 50, 51))) == []
        assert broker.seeks == [{0: 50}]
        assert _offsets(asyncio.run(c.admit(_events(0, 50, 51)))) == [(0, 50), (0, 51)]
    assert "located[0]: offsets 12 to 49 were removed by retention" in caplog.text
    assert c.gaps == 0 and "skipped by the consumer" not in caplog.text


def test_a_revoked_partition_starts_from_the_commit_again() -> None:
    broker = Broker({0: 3}, {})
    c = broker.continuity()
    asyncio.run(c.admit(_events(0, 3, 4)))
    c.forget({0})
    broker.commit[0] = 4  # what the last checkpoint acked was committed
    assert _offsets(asyncio.run(c.admit(_events(0, 4, 5)))) == [(0, 4), (0, 5)]
    assert broker.seeks == []
