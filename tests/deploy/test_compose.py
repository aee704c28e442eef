"""docker/compose.yaml: a real Compose implementation (Debian's docker-compose, which needs no
Docker engine for `config`) accepts it; every `firewatch` command in it parses with the real CLI
parser; every FIREWATCH_* variable exists and its value validates; the volumes keep what must
survive a restart; and the README documents the same commands."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from firewatch.settings import Settings
from tests.deploy.commands import documented_one_offs, documented_services, parse
from tests.deploy.stack import (
    command,
    dockerfile_env,
    environment,
    firewatch_services,
    metrics_port,
    option,
    services,
)
from tests.deploy.tools import COMPOSE, DOCKER, require, run, said

SERVICES = {"kafka", "redis", "worker", "dispatcher", "api", "prometheus", "grafana"}
# named volume -> where its service keeps its data
VOLUMES = {
    "kafka-data": ("kafka", "/var/lib/kafka/data"),
    "redis-data": ("redis", "/data"),
    "prometheus-data": ("prometheus", "/prometheus"),
    "grafana-data": ("grafana", "/var/lib/grafana"),
}


def _compose(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(require("docker-compose"), *args)


def test_docker_compose_accepts_the_file() -> None:
    result = _compose("-f", COMPOSE, "config", "-q")
    assert result.returncode == 0, said(result)
    result = _compose("-f", COMPOSE, "config", "--services")
    assert result.returncode == 0, said(result)
    assert set(result.stdout.split()) == SERVICES, said(result)
    result = _compose("-f", COMPOSE, "config", "--volumes")
    assert result.returncode == 0, said(result)
    assert set(result.stdout.split()) == set(VOLUMES), said(result)


def test_docker_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: the same file with the workers depending on a service that
    does not exist is refused, naming it."""
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    for name in ("worker", "dispatcher", "api"):
        doc["services"][name]["build"]["context"] = str(DOCKER.parent)
    for name in ("prometheus", "grafana"):
        doc["services"][name]["volumes"] = []
    doc["services"]["worker"]["depends_on"]["broker"] = {"condition": "service_healthy"}
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = _compose("-f", broken, "config", "-q")
    assert result.returncode != 0, said(result)
    assert "broker" in result.stdout + result.stderr, said(result)


def test_the_firewatch_services_run_the_long_running_processes() -> None:
    stack = firewatch_services()
    assert {name: command(s)[0] for name, s in stack.items()} == {
        "worker": "worker",
        "dispatcher": "dispatcher",
        "api": "api",
    }
    assert services()["worker"]["deploy"]["replicas"] == 2


@pytest.mark.parametrize("name", ["worker", "dispatcher", "api"])
def test_each_command_parses_with_the_cli(name: str) -> None:
    service = firewatch_services()[name]
    args = parse(command(service))
    if name == "api":
        assert (args.host, args.port) == ("0.0.0.0", 8000)
    else:
        # served by the process itself, for Prometheus and for the health check
        assert args.metrics_port == metrics_port(service, "--metrics-port")


@pytest.mark.parametrize("name", ["worker", "dispatcher", "api"])
def test_each_environment_is_valid_settings(name: str) -> None:
    """Every FIREWATCH_* variable is one Settings reads, and the values validate (as the
    process would read them: the image's ENV, then the service's)."""
    service = firewatch_services()[name]
    env = {**dockerfile_env(), **environment(service)}
    known = set(Settings.env_names().values())
    used = {k for k in env if k.startswith("FIREWATCH_")}
    assert used <= known, f"not settings: {sorted(used - known)}"
    settings = Settings.from_env(env)
    assert settings.redis_url == "redis://redis:6379/0"  # never the embedded redis-server
    assert settings.kafka_bootstrap == "kafka:9092"
    if option(command(service), "--metrics-port"):
        # Prometheus scrapes from its own container: not on loopback only
        host = option(command(service), "--metrics-host") or settings.metrics_host
        assert host == "0.0.0.0"
    if name == "api":
        assert settings.api_ingest == "kafka"


def test_worker_state_is_on_a_volume_of_each_replica() -> None:
    worker = firewatch_services()["worker"]
    settings = Settings.from_env(environment(worker))
    assert settings.state_store == "rocksdb://"
    anonymous = [v for v in worker["volumes"] if ":" not in v]  # one per replica
    assert len(anonymous) == 1
    for folder in (settings.state_dir, settings.cache_dir):
        assert folder is not None and folder.is_relative_to(anonymous[0]), folder


def test_named_volumes_hold_each_service_s_data() -> None:
    stack = services()
    for volume, (name, path) in VOLUMES.items():
        assert f"{volume}:{path}" in stack[name]["volumes"], (name, stack[name]["volumes"])
    assert stack["kafka"]["environment"]["KAFKA_LOG_DIRS"] == VOLUMES["kafka-data"][1]
    redis = stack["redis"]["command"]
    assert option(redis, "--appendonly") == "yes"
    assert option(redis, "--appendfsync") == "always"  # README, "Faults"
    prometheus = stack["prometheus"]["command"]
    assert f"--storage.tsdb.path={VOLUMES['prometheus-data'][1]}" in prometheus


@pytest.mark.parametrize("name", ["worker", "dispatcher"])
def test_health_checks_read_the_metrics_port(name: str) -> None:
    service = firewatch_services()[name]
    check = " ".join(service["healthcheck"]["test"])
    port = metrics_port(service, "--metrics-port")
    assert f"http://127.0.0.1:{port}/metrics" in check, check


def test_the_readme_documents_the_commands_the_stack_runs() -> None:
    stack = {name: command(s) for name, s in firewatch_services().items()}
    assert documented_services() == stack


def test_the_readme_s_one_off_commands_parse() -> None:
    one_offs = documented_one_offs()
    assert len(one_offs) >= 2, "the Deployment section shows how to add a token and produce"
    for argv in one_offs:
        parse(argv)


def test_the_project_is_named_firewatch() -> None:
    """docker/.env, which Compose reads beside the file: containers and volumes are
    firewatch-*, whatever the folder; and the file needs nothing else from the environment."""
    assert "COMPOSE_PROJECT_NAME=firewatch\n" in (DOCKER / ".env").read_text(encoding="utf-8")
    assert "${" not in COMPOSE.read_text(encoding="utf-8")
