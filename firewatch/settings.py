"""One frozen settings object, built at the entry points (CLI, worker) and passed down.

Only `Settings.from_env` reads an environment, the one its caller passes (pydantic-settings
parses it: FIREWATCH_<FIELD> for each field); building Settings in code reads none, and the engine
never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from firewatch.errors import FirewatchError

PREFIX = "FIREWATCH_"  # each field's variable: FIREWATCH_ and its name in capitals


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=PREFIX,
        env_ignore_empty=True,  # FIREWATCH_REDIS_URL= is as if unset
    )

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
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the arguments: `Settings(...)` in code never reads os.environ (from_env does,
        from the mapping it is given)."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Defaults, then FIREWATCH_* variables, then explicit overrides (CLI flags, not None)."""
        try:
            values = _Environ(cls, environ)()
            values.update({k: v for k, v in overrides.items() if v is not None})
            return cls(**values)
        except (ValidationError, SettingsError) as exc:
            raise FirewatchError(f"invalid settings: {_problems(exc)}") from None

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Each field's variable."""
        return {name: PREFIX + name.upper() for name in cls.model_fields}


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source over the mapping the entry point passes in."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def _problems(exc: ValidationError | SettingsError) -> str:
    """What is wrong, by variable name (a flag's value is named by its variable too)."""
    if isinstance(exc, SettingsError):  # a value the source could not decode (JSON fields)
        return str(exc)
    names = Settings.env_names()
    return "; ".join(
        f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
    )
