"""The stream worker's two stages as plain logic, apart from Kafka and Faust (tests drive it).

`locate` turns one detection partition's batch into dead letters and one message per region
(the batch validated, located and its per-record rules read once, `Engine.prepare`, in columns:
wire.py, in messages under the broker's size limit), and records how far in event time each
detection partition has been forwarded (progress.py); `incidents` runs one Engine per region
over a located partition's messages (`Engine.process_located`: no JSON, no geometry) and
progress markers, and releases what the least advanced detection partition allows.

Wall-clock time comes from an injected Clock: a detection observed more than
`sources.max_future` after it is read is rejected (`future_timestamp`), and no progress marker
or saved state may carry an event time beyond that bound (one device with a broken clock must
not silence a region).
"""

from __future__ import annotations

import base64
import logging
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence, Set
from datetime import UTC, datetime
from itertools import repeat
from typing import Any, cast

import numpy as np
import orjson

from firewatch.clock import Clock, SystemClock
from firewatch.engine.core import Engine
from firewatch.engine.located import Located
from firewatch.ingest.validate import Problem, check_lines, gc_paused, make_reject, validate_lines
from firewatch.metrics.engine import VALIDATE, EngineMeter, EngineMetrics
from firewatch.model import AnyDetection, Event, Reject, RejectReason
from firewatch.rules.model import Mask
from firewatch.settings import Settings
from firewatch.stream import pack, wire
from firewatch.stream.masks import ClosedLoopMasks
from firewatch.stream.progress import Progress
from firewatch.stream.topics import Topics

log = logging.getLogger(__name__)
ENVELOPE_BYTES = 512 * 1024  # a located message at most (the broker's default limit is 1 MiB)
MARKER = b"\x00progress"  # key of progress markers on the located topic
EMPTY = Problem(RejectReason.MALFORMED_JSON, None, "empty message value")
QUIET_AFTER = 10.0  # seconds of appends a read-out detection partition's claim stays behind


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
        "line": reject.line,  # within a message of several lines (pack.py); None for one line
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


class Worker:
    """The stages' state and logic, apart from Kafka and Faust wiring (so tests can drive it)."""

    def __init__(
        self,
        settings: Settings,
        make_engine: Callable[[], Engine],
        clock: Clock | None = None,
        quiet_after: float = QUIET_AFTER,
        metrics: EngineMetrics | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.settings = settings
        self.topics = Topics.of(settings)
        self.make_engine = make_engine
        self.clock = clock or SystemClock()
        self.locator = make_engine()  # stateless use: validation rules, grid, regions
        self.max_future = self.locator.rules.sources.max_future
        self.forward = Progress(quiet_after)  # what locate has sent, per detection partition
        self.progress: dict[int, dict[int, float]] = defaultdict(dict)  # located p -> source -> t
        self.sources: dict[int, int] = {}  # located p -> detection partitions, as markers say
        self.engines: dict[bytes, tuple[int, Engine]] = {}  # region -> (located partition, engine)
        self.masks = ClosedLoopMasks()  # false-alarm masks from the masks topic
        self.timer = timer  # the stages' monotonic clock: durations, idle and quiet times
        self.last_input = timer()
        self.read_out_at = 0.0  # when the broker last said every assigned partition is read out
        self.counts: Counter[str] = Counter()  # records rejected, outside, located
        # engine metrics (latency by this clock), from every region's engine and the locate stage
        self.meter = EngineMeter(metrics, self.clock) if metrics is not None else None

    # -- locate -------------------------------------------------------------------------------
    def locate(
        self,
        partition: int,
        values: Sequence[bytes | None],
        offsets: Sequence[int],
        timestamps: Sequence[int] | None = None,
    ) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """One detection partition's batch (values, each one JSON line or several, pack.py;
        offsets and Kafka timestamps in ms): (region key, envelope of that region's detections)
        messages to forward, and dead letters."""
        values = [v or b"" for v in values] if None in values else values
        # a message holds one JSON line or several (pack.py): each line is validated on its own
        raw, at, numbers = pack.split(cast(Sequence[bytes], values), offsets)
        not_after = self.clock.now() + self.max_future
        began = self.timer()
        with gc_paused():  # the batch's dicts are freed before a collection could meet them
            detections, rejects, t = self._validated(partition, raw, at, numbers, not_after)
            validated = self.timer()
            prepared = self.locator.prepare(detections, t)
            codes, names = self.locator.regions(prepared)
            # in no cell: nothing to route it to
            outside = [detections[i]["source"] for i in np.flatnonzero(codes < 0).tolist()]
            del detections
        # one message per region and batch: Kafka's per-message cost, not per detection
        out = [
            (names[code].encode(), message)
            for code in np.unique(codes[codes >= 0]).tolist()
            for message in wire.messages(
                prepared.take(np.flatnonzero(codes == code)), ENVELOPE_BYTES
            )
        ]
        topic, limit = self.topics.detections, self.settings.max_line_bytes
        places: Iterator[tuple[int | None, int | None]] = zip(
            at, numbers or repeat(None, len(at)), strict=True
        )
        by_place = dict(zip(places, raw, strict=True)) if rejects else {}
        dead = [
            reject_record(r, topic, partition, by_place.get((r.offset, r.line), b""), limit)
            for r in rejects
        ]
        self.counts.update(
            rejected=len(rejects), outside=len(outside), located=len(prepared) - len(outside)
        )
        if self.meter is not None:
            self.meter.timed(VALIDATE, validated - began)
            self.meter.timed("locate", self.timer() - validated)
            self.meter.metrics.count_rejects(rejects)
            self.meter.metrics.count_outside(outside)
        if len(prepared):  # a batch of nothing but bad records tells nothing of event time
            newest = float(prepared.cols.t.max())
            # validation rejected what is beyond the bound; the bound again, in depth
            newest = min(newest, not_after.timestamp())
            self.forward.record(partition, newest, max(timestamps) if timestamps else -1)
        return out, dead

    def _validated(
        self,
        partition: int,
        raw: Sequence[bytes],
        offsets: Sequence[int],
        numbers: Sequence[int | None] | None,
        not_after: datetime,
    ) -> tuple[list[AnyDetection], list[Reject], np.ndarray | None]:
        """A partition's lines validated (each with its message's offset and its number within
        the message, None for a message of one line): the detections, the rejects (an empty
        value is one, in offset order) and the detections' event times."""
        topic = self.topics.detections
        checked = check_lines(
            raw,
            f"{topic}[{partition}]",
            first_line=None,
            offsets=offsets,
            max_line_bytes=self.settings.max_line_bytes,
            not_after=not_after,
            line_numbers=numbers,
        )
        rejects = checked.rejects
        if checked.blank:  # skipped by validation: a dead letter here
            line = numbers or [None] * len(raw)
            rejects += [
                make_reject(topic, line[i], offsets[i], raw[i], EMPTY) for i in checked.blank
            ]
            rejects.sort(key=lambda r: (r.offset or 0, r.line or 0))
        return checked.detections, rejects, checked.t

    def marker(self, caught_up: Set[int] = frozenset(), sources: int | None = None) -> bytes | None:
        """Every detection partition's progress, for every located partition (progress.py)."""
        return self.forward.marker(caught_up, sources)

    def forget_sources(self, partitions: set[int]) -> None:
        """Detection partitions taken away by a rebalance: their new owner reports them."""
        self.forward.forget(partitions)

    # -- incidents ----------------------------------------------------------------------------
    def engine_for(self, region: bytes, partition: int, saved: bytes | None) -> Engine:
        held = self.engines.get(region)
        if held is not None and held[0] == partition:
            return held[1]
        return self._hold(region, partition, unpack_state(saved)[1] if saved else None)

    def load_all(self, table: MutableMapping[bytes, bytes]) -> None:
        """Restore every region of the table not yet in memory (after a restart)."""
        for region, blob in list(table.items()):
            if blob and region not in self.engines:
                partition, data = unpack_state(blob)
                self._hold(region, partition, data)

    def _hold(self, region: bytes, partition: int, data: bytes | None) -> Engine:
        """A region's engine, from its saved state (if any) with the masks of the closed loop; a
        saved event time beyond the clock's bound (written by an earlier version that let one
        record move it) is pulled back, and said."""
        engine = self.make_engine()
        if data is not None:
            engine.restore(data)
            repaired = engine.limit_time(self.clock.now() + self.max_future)
            if repaired:
                log.warning(
                    "%s: region %s: saved state ahead of the clock, repaired: %s",
                    self.topics.located,
                    region.decode(errors="replace"),
                    repaired,
                )
        self.masks.apply(engine)
        self.engines[region] = (partition, engine)
        if self.meter is not None:  # what the saved state counted is not counted again
            self.meter.watch(engine, region)
        return engine

    def set_masks(self, changes: Mapping[str, Mask | None]) -> None:
        """Closed-loop masks added, changed or removed (None): applied to every region held."""
        self.masks.update(changes)
        for _, engine in self.engines.values():
            self.masks.apply(engine)

    def forget(self, partitions: set[int]) -> None:
        """Located partitions taken away by a rebalance: their state lives on in the table."""
        for region in [r for r, (p, _) in self.engines.items() if p in partitions]:
            del self.engines[region]
            if self.meter is not None:
                self.meter.forget(region)
        for p in partitions:
            self.progress.pop(p, None)
            self.sources.pop(p, None)

    def incidents(
        self,
        partition: int,
        records: Sequence[tuple[bytes, bytes]],
        saved: Callable[[bytes], bytes | None],
    ) -> tuple[list[Event], set[bytes]]:
        """One located partition's batch: incident events, and the regions whose state changed."""
        where = f"{self.topics.located}[{partition}]"
        by_region: dict[bytes, list[Located | list[bytes]]] = defaultdict(list)
        for key, value in records:
            if key == MARKER:
                seen = self.progress[partition]
                progress, sources = _progress(value, where)
                for source, t in self._bounded(progress, where).items():
                    seen[source] = max(seen.get(source, t), t)
                if sources:
                    self.sources[partition] = sources
            elif key and wire.is_columns(value):
                try:
                    by_region[key].append(wire.decode(value))
                except wire.WireError as exc:
                    log.warning("%s: region %r: %s; skipped", where, key, exc)
            elif key and value:  # the JSON lines an earlier version's locate stage sent
                by_region[key].append(value.split(b"\n"))
            else:  # only `locate` writes here; anything else is skipped, loudly
                log.warning("%s: message without a region key or value skipped", where)
        events: list[Event] = []
        by_engine: dict[bytes, list[Event]] = defaultdict(list)  # for the metrics
        for region, parts in by_region.items():
            engine = self.engine_for(region, partition, saved(region))
            for part in _runs(parts):
                processed = (
                    engine.process_located(part, hold=True)
                    if isinstance(part, Located)
                    else engine.process(self._earlier(part, where), hold=True)
                )
                events += processed
                by_engine[region] += processed
        watermark = self.watermark(partition)
        for region, (p, engine) in self.engines.items():
            if p == partition and watermark is not None:
                released = engine.advance(watermark)
                if released:
                    events += released
                    by_engine[region] += released
        self._count(by_engine)
        return events, set(by_engine)

    def _earlier(self, lines: list[bytes], where: str) -> list[AnyDetection]:
        """The JSON lines of an earlier version's located message, validated again (checked
        against the clock where they arrived, not here, where a clock a few minutes behind
        would drop what locate accepted)."""
        began = self.timer()
        detections, _, rejects = validate_lines(lines, where, first_line=None)
        if self.meter is not None:
            self.meter.timed(VALIDATE, self.timer() - began)
        if rejects:
            log.warning("%s: %d located records invalid, skipped", where, len(rejects))
        return detections

    def _count(self, by_engine: dict[bytes, list[Event]]) -> None:
        """The engines that processed input or released events: what they counted, and their
        events, to the metrics."""
        if self.meter is not None:
            for region, events in by_engine.items():
                self.meter.update(self.engines[region][1], events, region)

    def _bounded(self, progress: dict[int, float], where: str) -> dict[int, float]:
        """A marker's progress, none of it beyond the clock's bound (a locate stage of an earlier
        version, or on a machine whose clock is wrong, may have sent more): said, and cut."""
        bound = (self.clock.now() + self.max_future).timestamp()
        ahead = {p: t for p, t in progress.items() if t > bound}
        if ahead:
            log.warning(
                "%s: progress marker ahead of the clock for detection partitions %s, cut to %s",
                where,
                sorted(ahead),
                datetime.fromtimestamp(bound, UTC).isoformat(),
            )
        return {p: min(t, bound) for p, t in progress.items()}

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

    def release_idle(self) -> tuple[list[Event], set[bytes]]:
        """No input for a while: release every region to the latest event time of the stream, as
        a replay's flush does (a region's own latest may be hours older)."""
        by_engine: dict[bytes, list[Event]] = {}
        known = [t for seen in self.progress.values() for t in seen.values()]
        last = datetime.fromtimestamp(max(known), UTC) if known else None
        for region, (_, engine) in self.engines.items():
            released = engine.flush(last)
            if released:
                by_engine[region] = released
        self._count(by_engine)
        return [e for events in by_engine.values() for e in events], set(by_engine)


def _runs(parts: list[Located | list[bytes]]) -> Iterator[Located | list[bytes]]:
    """A region's located messages of one batch, consecutive ones of a format (and, in columns,
    of a grid) joined."""
    run: list[Any] = []
    for part in parts:
        if run and _kind(part) != _kind(run[0]):
            yield _joined(run)
            run = []
        run.append(part)
    if run:
        yield _joined(run)


def _kind(part: Located | list[bytes]) -> str | None:
    return part.grid if isinstance(part, Located) else None


def _joined(run: list[Any]) -> Located | list[bytes]:
    if isinstance(run[0], Located):
        return Located.concat(run)
    return [line for lines in run for line in lines]


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
