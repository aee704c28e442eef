"""Every Redis key firewatch uses, in one place (like arq's constants). Prefix: `fw:`.

Orders
    fw:order:{order_id}                 hash: the dispatch order (see linkage/model.py Order), plus
                                        its aggregate slots, layout and buckets (`slots`,
                                        `agg_layout`, `agg_buckets`; layout-1 orders: `buckets`)
    fw:order:{order_id}:log             stream: its timestamped transitions and notifications
    fw:orders:by_created                sorted set: order id by creation time (epoch s)
    fw:orders:open                      sorted set: open (not closed) order id by creation time
                                        (epoch s), every team's and none's: the dispatch board.
                                        Added by CREATE, removed by the close in TRANSITION.
                                        Orders created before it existed are not in it: the board
                                        leaves them out (their team's list still has them)
    fw:incident:{incident_id}           string: the order id of an incident (idempotent dispatch)
    fw:team:{team}:open                 set: open order ids of a team (dispatch list)
    fw:sla                              sorted set: unacknowledged order id by SLA deadline
Incidents (linkage/incidents.py): every incident event, written by the scripts that act on it
    fw:incident:{incident_id}:record    hash: the incident's latest state (model.IncidentRecord)
    fw:incident:{incident_id}:events    list: its incident events (JSON), in the order recorded
    fw:incident:{incident_id}:seen      set: the event ids recorded (a redelivery records nothing)
    fw:incidents:by_first_seen          sorted set: every incident id by first detection (epoch s)
    fw:incidents:{field}:{value}        sorted set: the same, per value of a field: `status:open`,
                                        `status:closed`, `severity:<s>`, `team:<t>`, `village:<v>`,
                                        `township:<t>`, `district:<d>` (listing filters)
Change feed (linkage/feed.py)
    fw:feed                             stream: one entry per change of an incident or an order, in
                                        the script that makes it (feed.FIELDS); approximate MAXLEN
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
Maintenance (linkage/maintenance.py): device health, never counted as fire warnings
    fw:maint:{maintenance_id}           hash: a maintenance order (a device's outage, or a blind
                                        cell), open until the device or a watcher is back
    fw:maint:open                       sorted set: open maintenance order id by start (epoch s)
    fw:maint:subject:{kind}:{subject}   string: the open order of a device (`device:<id>`) or a
                                        cell (`cell:<grid id>`): where its end finds it
    fw:devices                          hash: device id -> JSON {grid_id, township, district,
                                        first_heard}: every device the engines have heard
    fw:health:{day}                     hash: per report day (days since the epoch in the
                                        report's UTC offset) and scope (`all`, `township:<t>`,
                                        `district:<d>`): `devices|<scope>` first heard that day,
                                        `downs|`, `blinds|` begun, `down_s|`, `blind_s|` seconds
                                        of outages that ended, split by day
    fw:health:days                      sorted set: the days that have a fw:health hash
Suppression masks (the closed loop's, and cells muted by hand)
    fw:masks                            hash: mask name -> Mask JSON (false-alarm closures, and
                                        muted cells); the order hash that made a closed-loop mask
                                        names it in its field `mask`
    fw:masks:version                    counter: bumped at every change, engines reload on change
    fw:masks:by                         hash: mask name -> JSON {by, at, note}: who made a mask
                                        by hand (`DispatchStore.add_mask`; none for the closed
                                        loop's, whose order log says who closed it)
"""

from __future__ import annotations

PREFIX = "fw:"
NOTIFY_GROUP = "firewatch"

ORDERS_BY_CREATED = PREFIX + "orders:by_created"
ORDERS_OPEN = PREFIX + "orders:open"
SLA = PREFIX + "sla"
AGG_SLOTS = PREFIX + "agg:slots"
AGG_LAYOUTS = PREFIX + "agg:layouts"
MAINT_OPEN = PREFIX + "maint:open"
DEVICES = PREFIX + "devices"
HEALTH_DAYS = PREFIX + "health:days"
MASKS = PREFIX + "masks"
MASKS_VERSION = PREFIX + "masks:version"
MASKS_BY = PREFIX + "masks:by"
INCIDENTS_BY_FIRST_SEEN = PREFIX + "incidents:by_first_seen"
FEED = PREFIX + "feed"


def order(order_id: str) -> str:
    return f"{PREFIX}order:{order_id}"


def order_log(order_id: str) -> str:
    return f"{PREFIX}order:{order_id}:log"


def incident(incident_id: str) -> str:
    return f"{PREFIX}incident:{incident_id}"


def incident_record(incident_id: str) -> str:
    return f"{PREFIX}incident:{incident_id}:record"


def incident_events(incident_id: str) -> str:
    return f"{PREFIX}incident:{incident_id}:events"


def incident_seen(incident_id: str) -> str:
    return f"{PREFIX}incident:{incident_id}:seen"


def incidents_by(field: str, value: str) -> str:
    """The listing index of incidents whose `field` (status, severity, team, ...) is `value`."""
    return f"{PREFIX}incidents:{field}:{value}"


def team_open(team: str) -> str:
    return f"{PREFIX}team:{team}:open"


def notify(target: str) -> str:
    return f"{PREFIX}notify:{target}"


def agg(bucket: str, layout: int) -> str:
    """A bucket's counters in aggregate layout `layout` (1: the unversioned first layout)."""
    return f"{PREFIX}agg:{bucket}" if layout == 1 else f"{PREFIX}agg:v{layout}:{bucket}"


def maintenance(maintenance_id: str) -> str:
    return f"{PREFIX}maint:{maintenance_id}"


def maintenance_subject(kind: str, subject: str) -> str:
    """The open maintenance order of a device (`device`) or a cell (`cell`)."""
    return f"{PREFIX}maint:subject:{kind}:{subject}"


def health(day: int) -> str:
    """A report day's device health counters (day: days since the epoch, report offset)."""
    return f"{PREFIX}health:{day}"
