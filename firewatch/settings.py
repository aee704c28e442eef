"""One frozen settings object, built at the entry points (CLI, worker) and passed down.

Only `Settings.from_env` reads the environment; the engine never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firewatch.errors import FirewatchError

_ENV = {
    "grid": "FIREWATCH_GRID",
    "grid_schema": "FIREWATCH_GRID_SCHEMA",
    "cameras": "FIREWATCH_CAMERAS",
    "rules": "FIREWATCH_RULES",
    "cache_dir": "FIREWATCH_CACHE_DIR",
    "batch_size": "FIREWATCH_BATCH_SIZE",
    "max_line_bytes": "FIREWATCH_MAX_LINE_BYTES",
    "redis_url": "FIREWATCH_REDIS_URL",
    "redis_dir": "FIREWATCH_REDIS_DIR",
    "kafka_bootstrap": "FIREWATCH_KAFKA_BOOTSTRAP",
    "kafka_partitions": "FIREWATCH_KAFKA_PARTITIONS",
    "topic_detections": "FIREWATCH_TOPIC_DETECTIONS",
    "topic_located": "FIREWATCH_TOPIC_LOCATED",
    "topic_incidents": "FIREWATCH_TOPIC_INCIDENTS",
    "topic_rejects": "FIREWATCH_TOPIC_REJECTS",
    "topic_masks": "FIREWATCH_TOPIC_MASKS",
    "kafka_group": "FIREWATCH_KAFKA_GROUP",
    "state_store": "FIREWATCH_STATE_STORE",
    "state_dir": "FIREWATCH_STATE_DIR",
    "snapshot_every": "FIREWATCH_SNAPSHOT_EVERY",
    "api_host": "FIREWATCH_API_HOST",
    "api_port": "FIREWATCH_API_PORT",
    "api_ingest": "FIREWATCH_API_INGEST",
    "api_max_body_bytes": "FIREWATCH_API_MAX_BODY_BYTES",
    "api_rate_limit": "FIREWATCH_API_RATE_LIMIT",
    "api_rate_window": "FIREWATCH_API_RATE_WINDOW",
    "api_ready_timeout": "FIREWATCH_API_READY_TIMEOUT",
    "api_stream_max": "FIREWATCH_API_STREAM_MAX",
    "api_stream_keepalive": "FIREWATCH_API_STREAM_KEEPALIVE",
    "metrics_host": "FIREWATCH_METRICS_HOST",
    "metrics_port": "FIREWATCH_METRICS_PORT",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    grid: Path = Path("data/grids/qujiang.geojson")
    grid_schema: Path | None = None  # YAML: which GeoJSON properties give id, name, team, ...
    # GeoJSON Points of the cameras (properties device_id, range_m), for the dashboard's map
    # (GET /v1/cameras); None: no camera positions
    cameras: Path | None = None
    rules: Path = Path("rules")
    cache_dir: Path | None = Path("var/cache")  # locate-index cache; None: no cache
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    max_line_bytes: Annotated[int, Field(ge=256, le=16 * 1024 * 1024)] = 65536
    redis_url: str | None = None  # None: the embedded redis-server, data in redis_dir
    redis_dir: Path = Path("var/redis")
    kafka_bootstrap: str = "127.0.0.1:39092"  # scripts/kafka.sh's default broker
    kafka_partitions: Annotated[int, Field(ge=1, le=1024)] = 4  # of topics firewatch creates
    topic_detections: str = "firewatch.detections"
    topic_located: str = "firewatch.located"
    topic_incidents: str = "firewatch.incidents"
    topic_rejects: str = "firewatch.rejects"
    topic_masks: str = "firewatch.masks"  # compacted: the closed loop's masks, for every worker
    kafka_group: str = "firewatch"  # the workers' consumer group (and Faust app id)
    state_store: str = "memory://"  # Faust table store; rocksdb:// with the rocksdict extra
    state_dir: Path = Path("var/faust")
    # seconds between a busy region's state snapshots: longer writes less changelog, and a
    # successor reads more located messages again after a crash
    snapshot_every: Annotated[float, Field(gt=0, le=3600)] = 1.0
    # the HTTP API (`firewatch api`)
    api_host: str = "127.0.0.1"
    api_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # where POST /v1/detections sends accepted records: an in-process engine whose incident
    # events go to the linkage queue (one API process), or the detections topic (the workers)
    api_ingest: Literal["engine", "kafka"] = "engine"
    api_max_body_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024 * 1024)] = 5 * 1024 * 1024
    # requests per token and window, counted in Redis (so across API processes)
    api_rate_limit: Annotated[int, Field(ge=1, le=1_000_000)] = 600
    api_rate_window: Annotated[float, Field(ge=1, le=86400)] = 60.0
    # seconds /readyz waits for Redis and the Kafka broker
    api_ready_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    # GET /v1/stream: subscribers one API process serves at most (more answer 503), and seconds
    # between keep-alive comments on a quiet stream (they find connections that died)
    api_stream_max: Annotated[int, Field(ge=1, le=100_000)] = 2000
    api_stream_keepalive: Annotated[float, Field(gt=0, le=300)] = 15.0
    # `firewatch worker` and `firewatch dispatcher`: their metrics at http://host:port/metrics
    # (None: not served; 0: any free port, logged). The API serves its own at GET /metrics.
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Defaults, then FIREWATCH_* variables, then explicit overrides (CLI flags, not None)."""
        values: dict[str, Any] = {k: environ[v] for k, v in _ENV.items() if environ.get(v)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_ENV.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
            )
            raise FirewatchError(f"invalid settings: {problems}") from None

    @staticmethod
    def env_names() -> dict[str, str]:
        return dict(_ENV)
