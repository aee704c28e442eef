"""Linkage-queue metrics: what the orders in Redis say, read from Redis at each scrape, and what
this process did to Redis (escalations, errors, retries), counted as it happens.

`LinkageCollector` reads the running aggregates that the order scripts keep (linkage/
aggregates.py, through report.read_totals: the report's own reads) and the order indexes
(linkage/keys.py), so its figures survive restarts and every process that exports them agrees:
aggregate them across processes with max(), not sum(). A scrape costs a handful of reads plus one
pipelined read per open order. Redis away: the scrape still answers, with
firewatch_linkage_read_ok 0 and without the linkage series.

Histograms come from the aggregates' duration bins (aggregates.DURATION_EDGES): bucket `le=E`
counts durations under E (a duration exactly on an edge counts in the bucket above; Prometheus
would put it in E's); they have no `_sum` (the aggregates keep none), so take quantiles with
histogram_quantile(), not averages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import redis
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from firewatch.clock import Clock
from firewatch.linkage import aggregates, codec, keys
from firewatch.linkage.model import OrderState
from firewatch.linkage.report import durations, read_totals

log = logging.getLogger(__name__)
# the Redis operations the `operation` label names
REDIS_OPERATIONS = ("deliver", "escalate", "masks", "metrics")
HISTOGRAMS = {  # metric: (aggregates.DURATIONS kind, help)
    "firewatch_linkage_time_to_ack_seconds": (
        "to_ack",
        "Seconds from a dispatch order to its acknowledgement (orders ever acknowledged)",
    ),
    "firewatch_linkage_time_to_scene_seconds": (
        "to_scene",
        "Seconds from a dispatch order to the team's arrival on scene",
    ),
    "firewatch_linkage_time_to_close_seconds": (
        "to_close",
        "Seconds from a dispatch order to its close",
    ),
    "firewatch_linkage_detection_to_dispatch_seconds": (
        "to_dispatch",
        "Seconds from an incident's first detection (event time) to its dispatch order",
    ),
}
COUNTERS = {  # metric: (aggregates counter, help)
    "firewatch_linkage_warnings": ("issued", "Fire warnings issued (dispatch orders created)"),
    "firewatch_linkage_responses": ("acknowledged", "Dispatch orders acknowledged"),
    "firewatch_linkage_closures": ("closed", "Dispatch orders closed"),
}
RATIOS = {  # metric: (numerator, help)
    "firewatch_linkage_response_ratio": (
        "acknowledged",
        'Warnings acknowledged / warnings issued, all time; district="" is every order',
    ),
    "firewatch_linkage_closure_ratio": (
        "closed",
        'Warnings closed / warnings issued, all time; district="" is every order',
    ),
}


class LinkageMetrics:
    """What this process did to the linkage queue, counted as it happens. It is the
    LinkageConsumer's `faults` (error, retry) as well."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.escalations = Counter(
            "firewatch_linkage_escalations_total",
            "Escalation steps this process made, by the level escalated to (village, township, "
            "district, org, ...)",
            ["level"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "firewatch_redis_errors_total",
            "Redis calls that failed (unreachable, or refused), by operation",
            ["operation"],
            registry=registry,
        )
        self.redis_retries = Counter(
            "firewatch_redis_retries_total",
            "Redis calls retried after a failure, by operation",
            ["operation"],
            registry=registry,
        )
        for operation in REDIS_OPERATIONS:
            self.redis_errors.labels(operation)
            self.redis_retries.labels(operation)

    def escalated(self, done: Sequence[tuple[str, str]]) -> None:
        """Escalation steps: (order id, the responder escalated to, `<level>:<name>`)."""
        for _, responder in done:
            self.escalations.labels(responder.partition(":")[0]).inc()

    def error(self, operation: str) -> None:
        self.redis_errors.labels(operation).inc()

    def retry(self, operation: str) -> None:
        self.redis_retries.labels(operation).inc()


class LinkageCollector(Collector):
    """The linkage queue's figures from Redis, read at each scrape (see the module)."""

    def __init__(
        self, client: redis.Redis | None, clock: Clock, faults: LinkageMetrics | None = None
    ) -> None:
        self.r: Any = client  # redis-py's return types are unions of its sync and async clients
        self.clock = clock
        self.faults = faults

    def describe(self) -> Iterator[Any]:
        """The families without reading Redis (the registry checks names with it)."""
        return iter([*self._families(None, None), _read_ok(None)])

    def collect(self) -> Iterator[Any]:
        try:
            figures = self._read()
        except (redis.RedisError, aggregates.LayoutError) as exc:
            log.warning("metrics: linkage figures not read from Redis: %s", exc)
            if self.faults is not None:
                self.faults.error("metrics")
            return iter([_read_ok(0)])
        return iter([*self._families(*figures), _read_ok(1)])

    def _read(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        slots, totals = read_totals(self.r, ["all"])
        rows = {
            scope: totals[slot]
            for scope, slot in slots.items()
            if scope == "all" or scope.startswith("district:")
        }
        look = self.r.pipeline(transaction=False)
        look.zrange(keys.ORDERS_OPEN, 0, -1)
        look.zcount(keys.SLA, "-inf", codec.epoch(self.clock.now()))
        open_ids, overdue = look.execute()
        states = self.r.pipeline(transaction=False)
        for oid in open_ids:
            states.hget(keys.order(oid.decode()), "state")
        by_state = {s.value: 0 for s in OrderState}
        for state in states.execute() if open_ids else []:
            if state is not None and state.decode() in by_state:
                by_state[state.decode()] += 1
        closed = rows.get("all")
        by_state[OrderState.CLOSED.value] = (
            0 if closed is None else int(closed[aggregates.INDEX["closed"]])
        )
        return {"states": by_state, "overdue": int(overdue)}, rows

    def _families(
        self, now: dict[str, Any] | None, rows: dict[str, np.ndarray] | None
    ) -> list[Any]:
        orders = GaugeMetricFamily(
            "firewatch_linkage_orders",
            "Dispatch orders by state now (closed: every order ever closed)",
            labels=["state"],
        )
        overdue = GaugeMetricFamily(
            "firewatch_linkage_overdue_orders",
            "Pending (unacknowledged) orders past their SLA deadline",
        )
        if now is not None:
            for state, n in now["states"].items():
                orders.add_metric([state], n)
            overdue.add_metric([], now["overdue"])
        out: list[Any] = [orders, overdue]
        districts = {
            scope.partition(":")[2]: row
            for scope, row in (rows or {}).items()
            if scope.startswith("district:")
        }
        for name, (metric, text) in COUNTERS.items():
            counter = CounterMetricFamily(name, f"{text}, by district", labels=["district"])
            for district, row in sorted(districts.items()):
                counter.add_metric([district], int(row[aggregates.INDEX[metric]]))
            out.append(counter)
        scopes = {"": rows["all"]} if rows and "all" in rows else {}
        scopes.update(districts)
        for name, (metric, text) in RATIOS.items():
            ratio = GaugeMetricFamily(name, text, labels=["district"])
            for district, row in sorted(scopes.items()):
                issued = int(row[aggregates.INDEX["issued"]])
                if issued:
                    ratio.add_metric([district], int(row[aggregates.INDEX[metric]]) / issued)
            out.append(ratio)
        for name, (kind, text) in HISTOGRAMS.items():
            histogram = HistogramMetricFamily(name, text)
            if rows and "all" in rows:
                _add_bins(histogram, durations(rows["all"], kind))
            out.append(histogram)
        return out


def _read_ok(value: int | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "firewatch_linkage_read_ok",
        "1 when this scrape read the linkage figures from Redis, 0 when it could not (the "
        "other firewatch_linkage_* series are missing from it then)",
    )
    if value is not None:
        family.add_metric([], value)
    return family


def _add_bins(family: HistogramMetricFamily, bins: np.ndarray) -> None:
    """The aggregates' bins as cumulative buckets at their upper edges, +Inf and _count (no
    _sum: see the module)."""
    cumulative = np.cumsum(bins, dtype=np.float64)
    edges = aggregates.DURATION_EDGES
    buckets = [(_le(edges[i + 1]), float(cumulative[i])) for i in range(len(edges) - 1)]
    buckets.append(("+Inf", float(cumulative[-1])))
    family.add_metric([], buckets, None)
    family.samples.append(Sample(family.name + "_count", {}, float(cumulative[-1])))


def _le(edge: float) -> str:
    return str(float(edge))
