"""The `firewatch` command: argument parsing and wiring only."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firewatch.errors import FirewatchError

if TYPE_CHECKING:
    from firewatch.settings import Settings


def _require_files(paths: Sequence[Path]) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FirewatchError(f"input file not found: {', '.join(missing)}")


def _moment(text: str) -> datetime:
    """An RFC 3339 time with a UTC offset (argparse type of `replay --now`)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time with a UTC offset, e.g. 2026-04-05T00:00:00+08:00"
        )
    return when


def _replay(args: argparse.Namespace) -> int:
    from firewatch.clock import SystemClock
    from firewatch.replay import replay
    from firewatch.runtime import open_engine
    from firewatch.settings import Settings

    settings = Settings.from_env(
        os.environ,
        grid=args.grid,
        grid_schema=args.grid_schema,
        rules=args.rules,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
    )
    _require_files(args.inputs)
    engine = open_engine(settings)
    registry = metrics = None
    if args.metrics_out is not None:
        from firewatch.metrics import CollectorRegistry, EngineMetrics

        registry = CollectorRegistry()
        metrics = EngineMetrics(registry)
    summary = replay(
        engine,
        args.inputs,
        args.out,
        args.rejects,
        batch_size=settings.batch_size,
        max_line_bytes=settings.max_line_bytes,
        # the edge reads the clock, the engine never does (to the second: the summary shows it)
        now=args.now or SystemClock().now().replace(microsecond=0),
        metrics=metrics,
    )
    print(summary.render())
    if registry is not None:
        from firewatch.metrics import write_snapshot

        write_snapshot(registry, args.metrics_out)
        print(f"metrics: {args.metrics_out}")
    return 0


def _rules_check(args: argparse.Namespace) -> int:
    from firewatch.rules import load_rules

    rules = load_rules(args.directory)
    print(f"{args.directory}: ok ({len(rules.masks)} masks)")
    return 0


def _grid_build(args: argparse.Namespace) -> int:
    from firewatch.sim.demo_grid import grid_build_main

    print(grid_build_main(args.boundary, args.district, args.cell_km, args.seed, args.out))
    return 0


def _grid_check(args: argparse.Namespace) -> int:
    from firewatch.geo.grid import GridSchema, load_grid

    schema = GridSchema.from_yaml(args.schema) if args.schema else GridSchema()
    grid = load_grid(args.grid, schema)
    for repair in grid.repairs:
        print(f"repaired: {repair}")
    for a, b in grid.overlaps:
        print(f"overlap: {grid.cells[a].id} and {grid.cells[b].id} (first in file order wins)")
    print(
        f"{args.grid}: {len(grid.cells)} cells, {len(grid.repairs)} repairs, "
        f"{len(grid.overlaps)} overlapping pairs"
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from firewatch.simulate import simulate_main

    print(
        simulate_main(
            args.grid, args.out, args.seed, args.hours, args.sensors, args.cameras, args.fires
        )
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from firewatch.sim.demo import DemoSeason, season_main

    args.out.mkdir(parents=True, exist_ok=True)
    demo = DemoSeason(
        args.grid,
        args.rules,
        args.redis_url,
        args.redis_dir,
        args.out,
        args.seed,
        args.days,
        args.fires,
        args.sensors,
        args.metrics_out,
    )
    if args.no_serve:
        print(season_main(demo))
        return 0
    from firewatch.sim.serve import Serving, serve_main

    serving = Serving(args.host, args.port, args.speed, args.exit_after_season, args.loglevel)
    return serve_main(demo, serving, lambda text: print(text, flush=True))


def _kafka_settings(args: argparse.Namespace) -> Settings:
    from firewatch.settings import Settings

    metrics = {k: getattr(args, k, None) for k in ("metrics_host", "metrics_port")}
    return Settings.from_env(os.environ, kafka_bootstrap=args.bootstrap, **metrics)


def _produce(args: argparse.Namespace) -> int:
    import asyncio

    from firewatch.stream.produce import produce_main
    from firewatch.stream.topics import Topics, ensure_topics

    settings = _kafka_settings(args)
    _require_files(args.inputs)
    topics = Topics.of(settings)
    asyncio.run(ensure_topics(settings.kafka_bootstrap, topics))
    print(produce_main(args.inputs, settings.kafka_bootstrap, topics.detections, args.rate))
    return 0


def _consume_incidents(args: argparse.Namespace) -> int:
    from firewatch.stream.consume import consume_main

    settings = _kafka_settings(args)
    idle = None if args.follow else args.idle_timeout
    topic = settings.topic_incidents
    if args.out is None:
        summary = consume_main(settings.kafka_bootstrap, topic, sys.stdout.buffer, idle, args.group)
    else:
        with args.out.open("wb") as out:
            summary = consume_main(settings.kafka_bootstrap, topic, out, idle, args.group)
    print(summary, file=sys.stderr)
    return 0


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    from firewatch.metrics.processes import serve_worker
    from firewatch.runtime import engine_factory
    from firewatch.stream.heap import keep_freed_memory
    from firewatch.stream.topics import Topics, ensure_topics
    from firewatch.stream.worker import FaustWorker, build_app

    keep_freed_memory()  # snapshots allocate tens of MB every checkpoint (stream/heap.py)
    settings = _kafka_settings(args)
    asyncio.run(ensure_topics(settings.kafka_bootstrap, Topics.of(settings)))
    metrics = serve_worker(settings)
    app = build_app(
        settings,
        engine_factory(settings),
        idle_release=args.idle_release,
        quiet_after=args.quiet_after,
        stall_after=args.stall_after,
        engine_metrics=metrics.engine if metrics else None,
        stream_metrics=metrics.stream if metrics else None,
    )
    FaustWorker(app, loglevel=args.loglevel).execute_from_commandline()
    return 0


def _dispatcher(args: argparse.Namespace) -> int:
    import asyncio

    from firewatch.metrics.processes import serve_dispatcher
    from firewatch.runtime import open_linkage
    from firewatch.settings import Settings
    from firewatch.stream.dispatcher import run_dispatcher
    from firewatch.stream.topics import Topics, ensure_topics

    settings = Settings.from_env(
        os.environ,
        kafka_bootstrap=args.bootstrap,
        rules=args.rules,
        redis_url=args.redis_url,
        redis_dir=args.redis_dir,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
    )
    logging.getLogger().setLevel(args.loglevel.upper())
    asyncio.run(ensure_topics(settings.kafka_bootstrap, Topics.of(settings)))
    linkage = open_linkage(settings)
    every = args.escalate_every or linkage.routing.escalate_every.total_seconds()
    metrics = serve_dispatcher(settings, linkage)
    counts = run_dispatcher(
        settings,
        linkage,
        every,
        metrics.stream if metrics else None,
        metrics.linkage if metrics else None,
    )
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing dispatched")
    return 0


def _api_settings(args: argparse.Namespace) -> Settings:
    from firewatch.settings import Settings

    return Settings.from_env(
        os.environ,
        rules=args.rules,
        redis_url=args.redis_url,
        redis_dir=args.redis_dir,
        **({"api_host": args.host, "api_port": args.port} if args.command == "api" else {}),
    )


def _api(args: argparse.Namespace) -> int:
    from firewatch.api.server import serve

    serve(_api_settings(args), log_level=args.loglevel)
    return 0


def _token(args: argparse.Namespace) -> int:
    from firewatch.api.tokens import TokenError, TokenStore
    from firewatch.clock import SystemClock
    from firewatch.linkage import server

    settings = _api_settings(args)
    store = TokenStore(server.connect(settings.redis_url, settings.redis_dir))
    if args.token_cmd == "add":
        token = store.add(args.role, args.name, SystemClock().now().replace(microsecond=0))
        print(token)
        print(
            f"token {args.name!r} ({args.role}) added: shown this once, Redis keeps its sha256",
            file=sys.stderr,
        )
    elif args.token_cmd == "revoke":
        if not store.revoke(args.name):
            raise TokenError(f"no token named {args.name!r} (see `firewatch token list`)")
        print(f"revoked token {args.name!r}")
    else:
        for record in store.records():
            print(f"{record.name:<24} {record.role:<28} created {record.created.isoformat()}")
    return 0


def _add_api_commands(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--rules", type=Path, help="rule directory (default rules/)")
        p.add_argument("--redis-url", help="Redis URL (FIREWATCH_REDIS_URL; default: embedded)")
        p.add_argument("--redis-dir", type=Path, help="embedded Redis folder (FIREWATCH_REDIS_DIR)")

    p = sub.add_parser("api", help="the HTTP API (FastAPI on uvicorn)")
    p.add_argument("--host", help="address to listen on (FIREWATCH_API_HOST; 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (FIREWATCH_API_PORT; 8000)")
    p.add_argument("--loglevel", default="info", help="uvicorn's log level (info: every request)")
    common(p)
    p.set_defaults(func=_api)

    token = sub.add_parser("token", help="the HTTP API's bearer tokens (kept as sha256 in Redis)")
    tsub = token.add_subparsers(dest="token_cmd", required=True)
    p = tsub.add_parser("add", help="make a token, print it once")
    p.add_argument(
        "--role", required=True, help="ingest, dashboard (read only), team:<team id>, or admin"
    )
    p.add_argument("--name", required=True, help="who holds it, e.g. phone-team-T05-V03 (unique)")
    common(p)
    p = tsub.add_parser("list", help="names and roles (never the tokens)")
    common(p)
    p = tsub.add_parser("revoke", help="revoke a token by its name")
    p.add_argument("name")
    common(p)
    token.set_defaults(func=_token)


def _metrics_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port at /metrics (FIREWATCH_METRICS_PORT; "
        "default: none; 0: any free port, logged)",
    )
    p.add_argument(
        "--metrics-host", help="address the metrics listen on (FIREWATCH_METRICS_HOST; 127.0.0.1)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firewatch", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="run the engine over JSONL or FIRMS CSV files")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    p.add_argument(
        "--grid", type=Path, help="forest grid GeoJSON (default data/grids/qujiang.geojson)"
    )
    p.add_argument(
        "--grid-schema", type=Path, help="YAML naming the grid's id/name/team/... properties"
    )
    p.add_argument("--rules", type=Path, help="rule directory (default rules/)")
    p.add_argument("--out", type=Path, required=True, help="incident events, JSONL")
    p.add_argument("--rejects", type=Path, help="rejected records with their reasons, JSONL")
    p.add_argument("--cache-dir", type=Path, help="locate-index cache (default var/cache)")
    p.add_argument("--batch-size", type=int)
    p.add_argument(
        "--now",
        type=_moment,
        metavar="TIME",
        help="when the input was recorded, RFC 3339 with offset (default: the current time). "
        "A record observed more than sources.max_future (rules/detection.yaml: 5m) after it "
        "is rejected as future_timestamp, so that one device clock far ahead cannot close or "
        "silence everything; the summary counts them. Give a file recorded elsewhere or in "
        "simulated time a TIME after its records.",
    )
    p.add_argument(
        "--metrics-out",
        type=Path,
        metavar="FILE",
        help="write the run's metrics there at the end (Prometheus text format)",
    )
    p.set_defaults(func=_replay)

    rules = sub.add_parser("rules", help="rule files").add_subparsers(
        dest="rules_cmd", required=True
    )
    p = rules.add_parser("check", help="validate a rule directory")
    p.add_argument("directory", type=Path)
    p.set_defaults(func=_rules_check)

    grid = sub.add_parser("grid", help="forest grids").add_subparsers(
        dest="grid_cmd", required=True
    )
    p = grid.add_parser("build", help="build the demo grid of a district")
    p.add_argument("boundary", type=Path, help="GeoJSON of district boundaries")
    p.add_argument("--district", required=True, help="district name or adcode")
    p.add_argument("--cell-km", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_grid_build)
    p = grid.add_parser("check", help="load a grid and report repairs and overlaps")
    p.add_argument("grid", type=Path)
    p.add_argument("--schema", type=Path)
    p.set_defaults(func=_grid_check)

    p = sub.add_parser("simulate", help="write a seeded detection stream for a grid")
    p.add_argument("--grid", type=Path, default=Path("data/grids/qujiang.geojson"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--sensors", type=int, default=400)
    p.add_argument("--cameras", type=int, default=24)
    p.add_argument("--fires", type=int, default=5)
    p.set_defaults(func=_simulate)

    from firewatch.sim import defaults as demo

    p = sub.add_parser(
        "demo",
        help="a simulated Qujiang fire season, end to end on Redis, played in accelerated time "
        "while the API serves the dashboard (--no-serve: as fast as possible, print only)",
    )
    p.add_argument("--grid", type=Path, default=Path("data/grids/qujiang.geojson"))
    p.add_argument("--rules", type=Path, default=Path("rules"))
    p.add_argument("--redis-url", help="an EMPTY Redis database to use (default: embedded)")
    p.add_argument(
        "--redis-dir",
        type=Path,
        default=demo.DEMO_REDIS_DIR,
        help="the demo's own embedded Redis folder, emptied at every run",
    )
    p.add_argument("--out", type=Path, default=Path("out"))
    p.add_argument("--seed", type=int, default=demo.DEMO_SEED)
    p.add_argument("--days", type=float, default=demo.DEMO_DAYS)
    p.add_argument("--fires", type=int, default=demo.DEMO_FIRES)
    p.add_argument("--sensors", type=int, default=demo.DEMO_SENSORS)
    p.add_argument(
        "--no-serve",
        action="store_true",
        help="no API: run the season as fast as possible and print the report",
    )
    p.add_argument("--host", default="127.0.0.1", help="address the API listens on")
    p.add_argument("--port", type=int, default=8000, help="its port (0: any free port)")
    p.add_argument(
        "--speed",
        type=float,
        default=demo.DEMO_SPEED,
        help="simulated seconds per wall second (1440: the 10-day season in 10 minutes)",
    )
    p.add_argument(
        "--exit-after-season",
        action="store_true",
        help="stop serving once the season is over (default: serve until Ctrl-C)",
    )
    p.add_argument("--loglevel", default="warning", help="uvicorn's log level (info: requests)")
    p.add_argument(
        "--metrics-out",
        type=Path,
        metavar="FILE",
        help="write the season's metrics there when it is over (Prometheus text format; "
        "while serving, the API has them at /metrics all along)",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("produce", help="publish JSONL or FIRMS CSV files to the detections topic")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (FIREWATCH_KAFKA_BOOTSTRAP)")
    p.add_argument("--rate", help="records per second, e.g. 5000/s (default: as fast as possible)")
    p.set_defaults(func=_produce)
    p = sub.add_parser("worker", help="run the engine as Faust agents on Kafka (one of a group)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (FIREWATCH_KAFKA_BOOTSTRAP)")
    p.add_argument(
        "--idle-release",
        type=float,
        default=5.0,
        help="seconds without input before buffered detections are released",
    )
    p.add_argument(
        "--quiet-after",
        type=float,
        default=10.0,
        help="seconds without records after which a detection partition, read to its end, no "
        "longer holds back the event-time watermark",
    )
    p.add_argument(
        "--stall-after",
        type=float,
        default=60.0,
        help="seconds a state-table recovery may make no progress before the worker exits with "
        "code 75 for its supervisor to start it again",
    )
    p.add_argument("--loglevel", default="warning")
    _metrics_flags(p)
    p.set_defaults(func=_worker)
    p = sub.add_parser(
        "dispatcher", help="incident events from Kafka to the linkage queue; escalation; masks"
    )
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (FIREWATCH_KAFKA_BOOTSTRAP)")
    p.add_argument("--rules", type=Path, help="rule directory with routing.yaml (default rules/)")
    p.add_argument("--redis-url", help="Redis URL (FIREWATCH_REDIS_URL; default: embedded)")
    p.add_argument("--redis-dir", type=Path, help="embedded Redis folder (FIREWATCH_REDIS_DIR)")
    p.add_argument(
        "--escalate-every",
        type=float,
        help="seconds between escalation runs (default: routing.yaml escalate_every)",
    )
    p.add_argument(
        "--loglevel", default="warning", help="log level (info: every batch and mask change)"
    )
    _metrics_flags(p)
    p.set_defaults(func=_dispatcher)
    p = sub.add_parser("consume-incidents", help="incident events from Kafka, each event once")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (FIREWATCH_KAFKA_BOOTSTRAP)")
    p.add_argument("--out", type=Path, help="write JSONL here (default: stdout)")
    p.add_argument("--idle-timeout", type=float, default=5.0, help="stop after this many idle s")
    p.add_argument("--follow", action="store_true", help="never stop")
    p.add_argument("--group", help="consumer group (commits its position); default: none")
    p.set_defaults(func=_consume_incidents)

    from firewatch.linkage.commands import add_commands

    add_commands(sub)
    _add_api_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except FirewatchError as exc:
        print(f"firewatch: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
