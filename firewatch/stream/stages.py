"""The stream worker's two stages as plain logic, apart from Kafka and Faust (tests drive it).

`locate` turns one detection partition's batch into dead letters and one message per region
(the valid lines as they came, newline-joined, in envelopes under the broker's size limit), and
records how far in event time each detection partition has been forwarded; `incidents` runs one
Engine per region over a located partition's messages and progress markers, and releases what
the least advanced detection partition allows.
"""

from __future__ import annotations

import base64
import logging
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence, Set
from datetime import UTC, datetime

import orjson

from firewatch.engine.core import Engine
from firewatch.ingest.validate import Problem, make_reject, validate_lines
from firewatch.model import IncidentEvent, Reject, RejectReason
from firewatch.settings import Settings
from firewatch.stream.topics import Topics

log = logging.getLogger(__name__)
ENVELOPE_BYTES = 512 * 1024  # a located message at most (the broker's default limit is 1 MiB)
MARKER = b"\x00progress"  # key of progress markers on the located topic
EMPTY = Problem(RejectReason.MALFORMED_JSON, None, "empty message value")


def reject_record(
    reject: Reject, topic: str, partition: int, raw: bytes, limit: int = 65536
) -> bytes:
    """A dead letter: the original bytes (as text, plus base64 when they are not UTF-8; the
    first `limit` bytes of a longer record, whose `size` says how long it was), the reason, and
    where the record was."""
    kept = raw[:limit]
    letter: dict[str, object] = {
        "topic": topic,
        "partition": partition,
        "offset": reject.offset,
        "reason": reject.reason.value,
        "field": reject.field,
        "message": reject.message,
        "raw": kept.decode("utf-8", errors="replace"),
        "size": len(raw),
    }
    try:
        kept.decode("utf-8")
    except UnicodeDecodeError:
        letter["raw_base64"] = base64.b64encode(kept).decode()
    if len(raw) > limit:
        letter["truncated"] = True
    return orjson.dumps(letter)


def pack_state(partition: int, engine: Engine) -> bytes:
    """A region's table value: its located partition, then its engine snapshot compressed."""
    return b"%d:" % partition + zlib.compress(engine.snapshot(), 1)


def unpack_state(blob: bytes) -> tuple[int, bytes]:
    head, _, body = blob.partition(b":")
    return int(head), zlib.decompress(body)


def envelopes(lines: Sequence[bytes], limit: int = ENVELOPE_BYTES) -> Iterator[bytes]:
    """Valid JSON lines joined by newlines, in messages of at most `limit` bytes (a line longer
    than that goes alone). A newline inside valid JSON is whitespace, so it becomes a space."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if size + len(line) > limit and chunk:
            yield b"\n".join(chunk)
            chunk, size = [], 0
        chunk.append(line.replace(b"\n", b" ") if b"\n" in line else line)
        size += len(line) + 1
    if chunk:
        yield b"\n".join(chunk)


class Worker:
    """The stages' state and logic, apart from Kafka and Faust wiring (so tests can drive it)."""

    def __init__(self, settings: Settings, make_engine: Callable[[], Engine]) -> None:
        self.settings = settings
        self.topics = Topics.of(settings)
        self.make_engine = make_engine
        self.locator = make_engine()  # stateless use: validation rules, grid, regions
        self.forwarded: dict[int, float] = {}  # detection partition -> latest event time sent
        self.heard: dict[int, float] = {}  # detection partition -> when a record last came
        self.progress: dict[int, dict[int, float]] = defaultdict(dict)  # located p -> source -> t
        self.sources: dict[int, int] = {}  # located p -> detection partitions, as markers say
        self.engines: dict[bytes, tuple[int, Engine]] = {}  # region -> (located partition, engine)
        self.last_input = time.monotonic()
        self.counts: Counter[str] = Counter()  # records rejected, outside, located

    # -- locate -------------------------------------------------------------------------------
    def locate(
        self, partition: int, values: Sequence[bytes | None], offsets: Sequence[int]
    ) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """One detection partition's batch: (region key, envelope of that region's detections)
        messages to forward, and dead letters."""
        topic, limit = self.topics.detections, self.settings.max_line_bytes
        raw = [v or b"" for v in values]
        detections, kept, rejects = validate_lines(
            raw,
            f"{topic}[{partition}]",
            first_line=None,
            offsets=offsets,
            max_line_bytes=limit,
        )
        blank = [i for i, v in enumerate(raw) if not v.strip()]  # skipped by validate_lines
        if blank:
            rejects += [make_reject(topic, None, offsets[i], raw[i], EMPTY) for i in blank]
            rejects.sort(key=lambda r: r.offset or 0)
        by_offset = dict(zip(offsets, raw, strict=True))
        dead = [
            reject_record(r, topic, partition, by_offset.get(r.offset or 0, b""), limit)
            for r in rejects
        ]
        routed: dict[str, list[bytes]] = defaultdict(list)
        for i, region in zip(kept, self.locator.regions(detections), strict=True):
            if region is None:
                self.counts["outside"] += 1  # outside every cell: nothing to route it to
                continue
            routed[region].append(raw[i])
        # one message per region and batch: Kafka's per-message cost, not per detection
        out = [(r.encode(), e) for r, lines in routed.items() for e in envelopes(lines)]
        self.counts.update(rejected=len(rejects), located=sum(map(len, routed.values())))
        if detections:  # a batch of nothing but bad records tells nothing of event time
            newest = max(d["observed_at"].timestamp() for d in detections)
            self.forwarded[partition] = max(self.forwarded.get(partition, newest), newest)
        return out, dead

    def marker(self, quiet: Set[int] = frozenset(), sources: int | None = None) -> bytes | None:
        """Every detection partition's progress, for every located partition (None: no news).

        A `quiet` partition (read to its end, and nothing new on it for a while) claims the
        newest event time forwarded from any partition, so that it no longer holds back every
        region's watermark; a record that arrives on it later may then be late (processed at
        once, as the engine does with late records). `sources`, the detection topic's partition
        count, is how many partitions a watermark waits to hear from."""
        if not self.forwarded:
            return None
        progress = dict(self.forwarded)
        newest = max(progress.values())
        progress.update((p, newest) for p in quiet)
        body: dict[str, float | int] = {str(p): t for p, t in sorted(progress.items())}
        if sources:
            body["n"] = sources
        return orjson.dumps(body)

    def quiet(self, caught_up: Iterable[int], now: float, after: float) -> set[int]:
        """Of the detection partitions read to their end, those with no record for `after`
        seconds (a partition's clock starts when it is first seen here)."""
        return {p for p in caught_up if now - self.heard.setdefault(p, now) >= after}

    def forget_sources(self, partitions: set[int]) -> None:
        """Detection partitions taken away by a rebalance: their new owner reports them."""
        for p in partitions:
            self.forwarded.pop(p, None)
            self.heard.pop(p, None)

    # -- incidents ----------------------------------------------------------------------------
    def engine_for(self, region: bytes, partition: int, saved: bytes | None) -> Engine:
        held = self.engines.get(region)
        if held is not None and held[0] == partition:
            return held[1]
        engine = self.make_engine()
        if saved:
            engine.restore(unpack_state(saved)[1])
        self.engines[region] = (partition, engine)
        return engine

    def load_all(self, table: MutableMapping[bytes, bytes]) -> None:
        """Restore every region of the table not yet in memory (after a restart)."""
        for region, blob in list(table.items()):
            if blob and region not in self.engines:
                partition, data = unpack_state(blob)
                engine = self.make_engine()
                engine.restore(data)
                self.engines[region] = (partition, engine)

    def forget(self, partitions: set[int]) -> None:
        """Located partitions taken away by a rebalance: their state lives on in the table."""
        for region in [r for r, (p, _) in self.engines.items() if p in partitions]:
            del self.engines[region]
        for p in partitions:
            self.progress.pop(p, None)
            self.sources.pop(p, None)

    def incidents(
        self,
        partition: int,
        records: Sequence[tuple[bytes, bytes]],
        saved: Callable[[bytes], bytes | None],
    ) -> tuple[list[IncidentEvent], set[bytes]]:
        """One located partition's batch: incident events, and the regions whose state changed."""
        where = f"{self.topics.located}[{partition}]"
        by_region: dict[bytes, list[bytes]] = defaultdict(list)
        for key, value in records:
            if key == MARKER:
                seen = self.progress[partition]
                progress, sources = _progress(value, where)
                for source, t in progress.items():
                    seen[source] = max(seen.get(source, t), t)
                if sources:
                    self.sources[partition] = sources
            elif key and value:
                by_region[key] += value.split(b"\n")
            else:  # only `locate` writes here; anything else is skipped, loudly
                log.warning("%s: message without a region key or value skipped", where)
        events: list[IncidentEvent] = []
        touched: set[bytes] = set()
        for region, lines in by_region.items():
            engine = self.engine_for(region, partition, saved(region))
            detections, _, rejects = validate_lines(lines, where, first_line=None)
            if rejects:
                log.warning("%s: %d located records invalid, skipped", where, len(rejects))
            events += engine.process(detections, hold=True)
            touched.add(region)
        watermark = self.watermark(partition)
        for region, (p, engine) in self.engines.items():
            if p == partition and watermark is not None:
                released = engine.advance(watermark)
                if released:
                    events += released
                    touched.add(region)
        return events, touched

    def watermark(self, partition: int) -> datetime | None:
        """The least advanced detection partition's progress, once every one has reported."""
        seen = self.progress.get(partition, {})
        if len(seen) < self.sources.get(partition, self.topics.partitions):
            return None
        return datetime.fromtimestamp(min(seen.values()), UTC)

    def states(self, regions: set[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """The table values of these regions (those still held: a rebalance may have taken some)."""
        return {
            r: (self.engines[r][0], pack_state(*self.engines[r]))
            for r in regions
            if r in self.engines
        }

    def release_idle(self) -> tuple[list[IncidentEvent], set[bytes]]:
        """No input for a while: release every region to the latest event time of the stream, as
        a replay's flush does (a region's own latest may be hours older)."""
        events: list[IncidentEvent] = []
        touched: set[bytes] = set()
        known = [t for seen in self.progress.values() for t in seen.values()]
        last = datetime.fromtimestamp(max(known), UTC) if known else None
        for region, (_, engine) in self.engines.items():
            released = engine.flush(last)
            if released:
                events += released
                touched.add(region)
        return events, touched


def _progress(value: bytes, where: str) -> tuple[dict[int, float], int | None]:
    """A progress marker's {detection partition: event time} and the detection topic's partition
    count when it says; ({}, None) and a warning if garbled."""
    try:
        body = orjson.loads(value)
        sources = body.pop("n", None)
        progress = {int(p): float(t) for p, t in body.items()}
        return progress, None if sources is None else int(sources)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        log.warning("%s: progress marker not understood, skipped: %r", where, value[:80])
        return {}, None
