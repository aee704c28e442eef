"""docker/compose.yaml and docker/Dockerfile read as data: the services, the `firewatch` command
line each one runs, its environment, and the Dockerfile's instructions."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.deploy.tools import COMPOSE, DOCKERFILE

ENTRYPOINT = ["firewatch"]  # the image's; a service that uses the image runs it with its command


def services() -> dict[str, dict[str, Any]]:
    """compose.yaml's services, with its YAML anchors and merge keys resolved."""
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    result: dict[str, dict[str, Any]] = doc["services"]
    return result


def firewatch_services() -> dict[str, dict[str, Any]]:
    """The services that run the firewatch image (the others are Kafka, Redis, ...)."""
    return {n: s for n, s in services().items() if s.get("image", "").startswith("firewatch:")}


def command(service: dict[str, Any]) -> list[str]:
    """The arguments the image's `firewatch` entrypoint gets: the service's command, as a list
    (Compose's string form would go through a shell-like split: the file uses lists only)."""
    argv = service["command"]
    assert isinstance(argv, list), f"command must be a list, not {argv!r}"
    return [str(a) for a in argv]


def option(argv: list[str], flag: str) -> str | None:
    """The value of `flag` in argv (`--flag VALUE` or `--flag=VALUE`), or None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def metrics_port(service: dict[str, Any], flag: str) -> int:
    value = option(command(service), flag)
    assert value is not None, f"{command(service)} has no {flag}"
    return int(value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping"
    return {k: str(v) for k, v in env.items()}


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def exec_form(instruction: str, rest: str) -> list[str]:
    """The JSON (exec) form of CMD, ENTRYPOINT, HEALTHCHECK CMD, as a list."""
    try:
        value = json.loads(rest)
    except json.JSONDecodeError:
        raise AssertionError(f"{instruction} is not in exec (JSON) form: {rest}") from None
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def dockerfile_env() -> dict[str, str]:
    """The runtime stage's ENV values (`ENV A=1 B=2` form)."""
    env: dict[str, str] = {}
    for keyword, rest in dockerfile():
        if keyword == "FROM":
            env = {}  # each stage its own
        elif keyword == "ENV":
            for pair in rest.split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env
