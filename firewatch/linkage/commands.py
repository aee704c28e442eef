"""`firewatch dispatch|report|masks|redis`: the field teams' command line until the HTTP API.

Wiring only: settings -> Redis client -> Linkage with the system clock.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import redis

from firewatch.errors import FirewatchError
from firewatch.linkage import inbox, server
from firewatch.linkage.model import MaintenanceOrder, Order, Resolution
from firewatch.linkage.service import Linkage
from firewatch.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        os.environ, rules=args.rules, redis_url=args.redis_url, redis_dir=args.redis_dir
    )


def _client(settings: Settings) -> redis.Redis:
    return server.connect(settings.redis_url, settings.redis_dir)


def _linkage(args: argparse.Namespace) -> Linkage:
    from firewatch.runtime import open_linkage  # imported when run: the CLI starts fast

    return open_linkage(_settings(args))


def _print_order(order: Order, as_json: bool) -> None:
    if as_json:
        print(order.model_dump_json())
        return
    where = order.grid_name or order.grid_id
    print(
        f"{order.id}  {order.state.value:<12} {order.severity.value:<8} {where}  "
        f"({order.lat:.5f}, {order.lon:.5f})  since {order.created_at:%Y-%m-%d %H:%M}Z  "
        f"responder {order.responder}"
        + (f"  escalated x{order.escalations}" if order.escalations else "")
    )


def _consume(args: argparse.Namespace) -> int:
    from firewatch.linkage.consumer import LinkageConsumer, read_events  # imports the engine

    consumer = LinkageConsumer(_linkage(args))
    totals = consumer.run(read_events(args.events, args.batch_size))
    print(
        f"{args.events}: {totals.created} orders created, {totals.duplicates} already dispatched, "
        f"{totals.renotified} re-notified on a severity rise, {totals.reached} teams told a fire "
        f"reached them, {totals.incident_closed} incidents "
        f"closed by the engine, {totals.unknown} updates for unknown incidents"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    orders = _linkage(args).store.open_orders(args.team)
    for order in orders:
        _print_order(order, args.json)
    if not args.json:
        print(f"{len(orders)} open orders for {args.team}")
    return 0


def _show(args: argparse.Namespace) -> int:
    linkage = _linkage(args)
    order = linkage.store.get(args.order)
    _print_order(order, args.json)
    if not args.json:
        print(f"  {_detected(order)}")
        if order.mask:
            print(f"  suppression mask {order.mask} (made by its false-alarm closure)")
    for entry in linkage.store.log(args.order):
        line = {"at": entry.at.isoformat(), "kind": entry.kind, "detail": entry.detail}
        if entry.by:
            line["by"] = entry.by
        text = f"  {entry.at:%Y-%m-%d %H:%M:%S}Z  {entry.kind:<16} {entry.detail}"
        print(json.dumps(line, ensure_ascii=False) if args.json else text)
    return 0


def _detected(order: Order) -> str:
    if order.detected_at is None:
        return "first detection: not recorded (the order predates detected_at)"
    delay = int((order.created_at - order.detected_at).total_seconds())
    sign, delay = ("-", -delay) if delay < 0 else ("", delay)
    return (
        f"first detection observed {order.detected_at:%Y-%m-%d %H:%M:%S}Z, dispatched "
        f"{sign}{delay // 3600}h{delay % 3600 // 60:02d}m{delay % 60:02d}s later"
    )


def _transition(args: argparse.Namespace) -> int:
    linkage = _linkage(args)
    if args.command_name == "close":
        order, changed = linkage.close(
            args.order, Resolution(args.outcome), args.cause, args.note, by=args.by
        )
    elif args.command_name == "arrive":
        order, changed = linkage.arrive(args.order, by=args.by)
    else:
        order, changed = linkage.ack(args.order, by=args.by)
    _print_order(order, as_json=False)
    if not changed:
        print("(nothing changed: already done)")
    return 0


def _print_maintenance(order: MaintenanceOrder, as_json: bool) -> None:
    if as_json:
        print(order.model_dump_json())
        return
    what = f"{order.source} {order.subject}" if order.kind == "device" else "cell"
    acked = f"  acknowledged by {order.acked_by}" if order.acked_by else ""
    print(
        f"{order.id}  {order.state.value:<8} {what}  {order.grid_name or order.grid_id}  "
        f"team {order.team or '-'}  since {order.since:%Y-%m-%d %H:%M}Z{acked}"
    )


def _maintenance(args: argparse.Namespace) -> int:
    linkage = _linkage(args)
    if args.maintenance_cmd == "ack":
        order, changed = linkage.ack_maintenance(args.order, by=args.by)
        _print_maintenance(order, as_json=False)
        if not changed:
            print(f"(nothing changed: acknowledged before by {order.acked_by})")
        return 0
    orders = linkage.maintenance.open_orders(args.team, args.limit)
    for o in orders:
        _print_maintenance(o, args.json)
    if not args.json:
        print(f"{len(orders)} open maintenance orders" + (f" for {args.team}" if args.team else ""))
    return 0


def _inbox(args: argparse.Namespace) -> int:
    """Print, then acknowledge: a reader that dies before printing leaves them pending, and the
    next read (same --consumer at once, any other after --min-idle) gets them again."""
    if args.count < 1:
        raise FirewatchError(f"dispatch inbox: --count must be at least 1, not {args.count}")
    if args.min_idle < 0:
        raise FirewatchError(f"dispatch inbox: --min-idle must be >= 0, not {args.min_idle:g}")
    store = _linkage(args).store
    notes = store.inbox(args.target, args.consumer, args.count, timedelta(seconds=args.min_idle))
    for n in notes:
        print(json.dumps({"id": n.id, **n.fields}, ensure_ascii=False), flush=True)
    store.ack_inbox(args.target, [n.id for n in notes])
    return 0


def _escalate(args: argparse.Namespace) -> int:
    for order_id, target in _linkage(args).escalate():
        print(f"{order_id}: escalated to {target}")
    return 0


def _report(args: argparse.Namespace) -> int:
    first = date.fromisoformat(args.first) if args.first else None
    last = date.fromisoformat(args.last) if args.last else None
    by = [b for b in args.by.split(",") if b] if args.by else []
    try:
        report = _linkage(args).report(first, last, by)
    except ValueError as exc:
        raise FirewatchError(str(exc)) from None
    print(json.dumps(report.as_dict(), ensure_ascii=False) if args.json else report.render())
    return 0


def _masks(args: argparse.Namespace) -> int:
    linkage = _linkage(args)
    if args.masks_cmd == "remove":
        linkage.remove_mask(args.name)
        print(f"removed suppression mask {args.name}")
        return 0
    for mask in linkage.store.masks():
        print(mask.model_dump_json())
    return 0


def _redis(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.redis_cmd == "stop":
        stopped = server.stop_embedded(settings.redis_dir)
        print("stopped" if stopped else f"no embedded redis-server running in {settings.redis_dir}")
    else:
        print(server.embedded_status(settings.redis_dir))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", type=Path, help="rule directory (default rules/)")
    p.add_argument("--redis-url", help="use this Redis (default: the embedded one)")
    p.add_argument("--redis-dir", type=Path, help="data folder of the embedded Redis (var/redis)")


def _actor(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--by",
        default="cli",
        help="who did it, recorded on the order's log and in the change feed (default cli), "
        "e.g. team:team-T05-V03 or admin:alice",
    )


def add_commands(sub: Any) -> None:
    dispatch = sub.add_parser("dispatch", help="dispatch orders: the field teams' commands")
    dsub = dispatch.add_subparsers(dest="dispatch_cmd", required=True)
    p = dsub.add_parser("consume", help="dispatch the incident events of a replay's --out file")
    p.add_argument("events", type=Path)
    p.add_argument("--batch-size", type=int, default=1000)
    p.set_defaults(func=_consume)
    p = dsub.add_parser("list", help="open orders of a team")
    p.add_argument("--team", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)
    p = dsub.add_parser("show", help="an order and its log")
    p.add_argument("order")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)
    for name, text in (("ack", "acknowledge an order"), ("arrive", "the team is on scene")):
        p = dsub.add_parser(name, help=text)
        p.add_argument("order")
        _actor(p)
        p.set_defaults(func=_transition, command_name=name)
    p = dsub.add_parser("close", help="close an order with its outcome")
    p.add_argument("order")
    p.add_argument("--outcome", required=True, choices=[r.value for r in Resolution])
    p.add_argument("--cause", help="e.g. known_heat_source (a false alarm then masks the place)")
    p.add_argument("--note")
    _actor(p)
    p.set_defaults(func=_transition, command_name="close")
    p = dsub.add_parser(
        "inbox", help="notifications of a target (team:<t>, township:<t>, ...) not yet handed over"
    )
    p.add_argument("target")
    p.add_argument(
        "--consumer",
        default="cli",
        help="this reader's name in the consumer group (default cli); a reader started again "
        "under the same name gets what it read and did not hand over; readers running at the "
        "same time need different names",
    )
    p.add_argument(
        "--min-idle",
        type=float,
        default=inbox.MIN_IDLE.total_seconds(),
        help="take over another reader's notifications unacknowledged for this many seconds (60)",
    )
    p.add_argument("--count", type=int, default=100, help="at most this many (100)")
    p.set_defaults(func=_inbox)
    p = dsub.add_parser("escalate", help="escalate every order past its SLA now")
    p.set_defaults(func=_escalate)
    for q in dsub.choices.values():
        _common(q)

    p = sub.add_parser("report", help="warnings, response and closure rates")
    p.add_argument("--from", dest="first", help="first day (YYYY-MM-DD) of warnings issued")
    p.add_argument("--to", dest="last", help="last day (YYYY-MM-DD)")
    p.add_argument("--by", default="township,district", help="team,township,district ('' for none)")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=_report)

    maint = sub.add_parser("maintenance", help="maintenance orders: silent devices, blind cells")
    msub = maint.add_subparsers(dest="maintenance_cmd", required=True)
    p = msub.add_parser("list", help="open ones, newest first")
    p.add_argument("--team", help="a team's only")
    p.add_argument("--limit", type=int, default=200, help="at most this many (200)")
    p.add_argument("--json", action="store_true")
    _common(p)
    p = msub.add_parser("ack", help="acknowledge one: someone is on it (it resolves by itself)")
    p.add_argument("order")
    _actor(p)
    _common(p)
    maint.set_defaults(func=_maintenance)

    masks = sub.add_parser("masks", help="suppression masks made by false-alarm closures")
    msub = masks.add_subparsers(dest="masks_cmd", required=True)
    _common(msub.add_parser("list", help="list them"))
    p = msub.add_parser("remove", help="remove one")
    p.add_argument("name")
    _common(p)
    masks.set_defaults(func=_masks)

    red = sub.add_parser("redis", help="the embedded redis-server")
    rsub = red.add_subparsers(dest="redis_cmd", required=True)
    _common(rsub.add_parser("status", help="is it running"))
    _common(rsub.add_parser("stop", help="stop it (data stays in the redis dir)"))
    red.set_defaults(func=_redis)
