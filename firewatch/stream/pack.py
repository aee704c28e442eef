"""Several detections in one message of the detections topic.

A message value there holds one JSON line (a sensor or gateway that sends each reading alone) or
several, separated by newlines (`firewatch produce` and the API pack the lines bound for one
partition: `Packer`). Kafka's cost is per message, on both sides (the locate stage turned each
message into a Python record object: about a quarter of its time with one line per message,
benchmarks/README.md "Stream"), so packing is what lets one worker carry more.

Every line keeps its own verdict: the worker splits a message (`split`) before validation, a bad
line becomes a dead letter naming the message's offset and its line number within the message,
and the lines around it go on. Blank lines within a message are skipped (as in a JSONL file); a
message with nothing but whitespace is one dead letter, as before. Lines are packed per partition,
chosen from each line's key (its device_id) as Kafka's default partitioner chooses it, so one
device's readings stay in order on one partition, as they did one message each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from operator import methodcaller

MESSAGE_LINES = 1000  # lines a packed message holds at most
MESSAGE_BYTES = 256 * 1024  # bytes a packed message holds at most (a longer line goes alone)
NEWLINE = b"\n"
_NEWLINES = methodcaller("count", NEWLINE)
_STRIP = methodcaller("strip")

Partitioner = Callable[[bytes | None, list[int], list[int]], int]


def split(
    values: Sequence[bytes], offsets: Sequence[int]
) -> tuple[Sequence[bytes], Sequence[int], list[int | None] | None]:
    """Message values to lines: (lines, each line's message offset, each line's number within its
    message or None for a message of one line). With no newline in any value, the values and
    offsets as they are and no numbers (one C-level pass over the batch)."""
    if not any(map(_NEWLINES, values)):
        return values, offsets, None
    lines: list[bytes] = []
    at: list[int] = []
    numbers: list[int | None] = []
    for value, offset in zip(values, offsets, strict=True):
        if NEWLINE not in value:
            lines.append(value)
            at.append(offset)
            numbers.append(None)
            continue
        pieces = value.split(NEWLINE)
        if all(map(_STRIP, pieces)):
            kept: Sequence[tuple[int | None, bytes]] | None = None
        elif not pieces[-1].strip() and all(map(_STRIP, pieces[:-1])):
            pieces.pop()  # the usual final newline
            kept = None
        else:  # blank lines within: skipped; a message of nothing but blank lines stays one
            kept = [(n, p) for n, p in enumerate(pieces, 1) if p.strip()] or [(None, value)]
        if kept is None:
            lines += pieces
            at += repeat(offset, len(pieces))
            numbers += range(1, len(pieces) + 1)
        else:
            lines += [p for _, p in kept]
            at += repeat(offset, len(kept))
            numbers += [n for n, _ in kept]
    return lines, at, numbers


class Packer:
    """JSON lines to packed messages of the detections topic, per partition: `add` a line with
    its key, send what it returns (full messages), and send what `drain` returns whenever the
    lines so far must go (before a wait, a fence, or at the end). Lines keep their order within
    a partition. A line should hold no newline (one inside valid JSON is whitespace: it becomes
    a space; a line from a file or a request body holds none)."""

    def __init__(
        self,
        partitions: Sequence[int],
        partitioner: Partitioner | None = None,
        max_lines: int = MESSAGE_LINES,
        max_bytes: int = MESSAGE_BYTES,
    ) -> None:
        if not partitions:
            raise ValueError("a packer needs the topic's partitions; none were given")
        if partitioner is None:
            from aiokafka.partitioner import DefaultPartitioner

            partitioner = DefaultPartitioner()
        self.partitions = sorted(partitions)
        self.partitioner = partitioner
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines: dict[int, list[bytes]] = {}
        self._bytes: dict[int, int] = {}

    def partition(self, key: bytes | None) -> int:
        """The partition Kafka's default partitioner gives a message with this key."""
        return self.partitioner(key, self.partitions, self.partitions)

    def add(self, key: bytes | None, line: bytes) -> list[tuple[int, bytes]]:
        """Buffer a line for its key's partition; the (partition, message) pairs now full."""
        if NEWLINE in line:
            line = line.replace(NEWLINE, b" ")
        p = self.partition(key)
        out = []
        held = self._lines.setdefault(p, [])
        size = self._bytes.get(p, 0)
        if held and size + len(line) > self.max_bytes:
            out.append((p, NEWLINE.join(held)))
            held.clear()
            size = 0
        held.append(line)
        size += len(line) + 1
        if len(held) >= self.max_lines or size > self.max_bytes:
            out.append((p, NEWLINE.join(held)))
            held.clear()
            size = 0
        self._bytes[p] = size
        return out

    def drain(self) -> list[tuple[int, bytes]]:
        """Every buffered line, as (partition, message) pairs; the packer is then empty."""
        out = [(p, NEWLINE.join(held)) for p, held in sorted(self._lines.items()) if held]
        self._lines.clear()
        self._bytes.clear()
        return out

    def __len__(self) -> int:
        """Lines buffered."""
        return sum(map(len, self._lines.values()))


def pack(
    lines: Sequence[bytes], keys: Sequence[bytes | None], packer: Packer
) -> list[tuple[int, bytes]]:
    """All of `lines` (each with its key) as packed messages, in order per partition."""
    out: list[tuple[int, bytes]] = []
    for key, line in zip(keys, lines, strict=True):
        out += packer.add(key, line)
    return out + packer.drain()
