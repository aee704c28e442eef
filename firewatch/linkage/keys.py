"""Every Redis key firewatch uses, in one place (like arq's constants). Prefix: `fw:`.

Orders
    fw:order:{order_id}                 hash: the dispatch order (see linkage/model.py Order), plus
                                        its aggregate slots, layout and buckets (`slots`,
                                        `agg_layout`, `agg_buckets`; layout-1 orders: `buckets`)
    fw:order:{order_id}:log             stream: its timestamped transitions and notifications
    fw:orders:by_created                sorted set: order id by creation time (epoch s)
    fw:incident:{incident_id}           string: the order id of an incident (idempotent dispatch)
    fw:team:{team}:open                 set: open order ids of a team (dispatch list)
    fw:sla                              sorted set: unacknowledged order id by SLA deadline
Notifications
    fw:notify:{target}                  stream: what a team or an office is told; read through
                                        the consumer group NOTIFY_GROUP. Targets: `team:<t>`,
                                        `village:<v>`, `township:<t>`, `district:<d>`, `org:<name>`
Running aggregates (linkage/aggregates.py)
    fw:agg:slots                        hash: scope (`all`, `team:<t>`, ...) -> slot number
    fw:agg:v{layout}:{bucket}           string: packed u32 counters, one row of that layout's
                                        metrics per slot; bucket `all`, `y2026`, `m2026-04`,
                                        `d2026-04-04`. Layout 1 (the first) is fw:agg:{bucket}
    fw:agg:layouts                      set: the layouts new orders have been counted in
Closed loop
    fw:masks                            hash: mask name -> Mask JSON (false-alarm closures); the
                                        order hash that made one names it in its field `mask`
    fw:masks:version                    counter: bumped at every change, engines reload on change
"""

from __future__ import annotations

PREFIX = "fw:"
NOTIFY_GROUP = "firewatch"

ORDERS_BY_CREATED = PREFIX + "orders:by_created"
SLA = PREFIX + "sla"
AGG_SLOTS = PREFIX + "agg:slots"
AGG_LAYOUTS = PREFIX + "agg:layouts"
MASKS = PREFIX + "masks"
MASKS_VERSION = PREFIX + "masks:version"


def order(order_id: str) -> str:
    return f"{PREFIX}order:{order_id}"


def order_log(order_id: str) -> str:
    return f"{PREFIX}order:{order_id}:log"


def incident(incident_id: str) -> str:
    return f"{PREFIX}incident:{incident_id}"


def team_open(team: str) -> str:
    return f"{PREFIX}team:{team}:open"


def notify(target: str) -> str:
    return f"{PREFIX}notify:{target}"


def agg(bucket: str, layout: int) -> str:
    """A bucket's counters in aggregate layout `layout` (1: the unversioned first layout)."""
    return f"{PREFIX}agg:{bucket}" if layout == 1 else f"{PREFIX}agg:v{layout}:{bucket}"
