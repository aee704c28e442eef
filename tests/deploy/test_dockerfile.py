"""docker/Dockerfile, read as data (no Docker engine here builds it): multi-stage onto
python:3.11-slim, a non-root user, its command a real `firewatch` command line, a health check on
that command's /healthz, and only files that exist and the build context keeps."""

from __future__ import annotations

import re

from tests.deploy.commands import parse
from tests.deploy.stack import dockerfile, exec_form, option
from tests.deploy.tools import ROOT


def _instructions(keyword: str) -> list[str]:
    return [rest for k, rest in dockerfile() if k == keyword]


def _runtime_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_multi_stage_onto_slim_python() -> None:
    stages = _instructions("FROM")
    assert stages == ["python:3.11-slim AS builder", "python:3.11-slim"]
    copied = [rest for k, rest in _runtime_stage() if k == "COPY"]
    assert any(c.startswith("--from=builder ") for c in copied)
    # no compiler in the runtime stage: it is installed in the builder only
    assert not any("build-essential" in rest for k, rest in _runtime_stage() if k == "RUN")


def test_runs_as_a_user_that_is_not_root() -> None:
    users = [rest for k, rest in _runtime_stage() if k == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    created = " ".join(rest for k, rest in _runtime_stage() if k == "RUN")
    assert re.search(rf"useradd .*\b{re.escape(users[-1])}\b", created), created


def test_entrypoint_and_command_are_a_firewatch_command_line() -> None:
    (entrypoint,) = _instructions("ENTRYPOINT")
    (cmd,) = _instructions("CMD")
    assert exec_form("ENTRYPOINT", entrypoint) == ["firewatch"]
    args = parse(exec_form("CMD", cmd))
    assert args.command == "api"


def test_health_check_reads_the_api_s_healthz() -> None:
    (check,) = _instructions("HEALTHCHECK")
    options, _, probe = check.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form("HEALTHCHECK CMD", probe)
    assert argv[:2] == ["python", "-c"] and "urllib.request.urlopen" in argv[2]
    port = option(exec_form("CMD", _instructions("CMD")[0]), "--port")
    assert f"'http://127.0.0.1:{port}/healthz'" in argv[2], argv[2]


def test_copies_files_that_exist_and_the_context_keeps() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for rest in _instructions("COPY"):
        if rest.startswith("--from="):
            continue
        *sources, _ = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not any(source == i or source.startswith(i + "/") for i in ignored), source


def test_the_image_s_settings_point_at_what_it_copies() -> None:
    env = dict(pair.partition("=")[::2] for rest in _instructions("ENV") for pair in rest.split())
    assert env["FIREWATCH_GRID"] == "/app/data/grids/qujiang.geojson"
    assert env["FIREWATCH_RULES"] == "/app/rules"
    workdir = _instructions("WORKDIR")[-1]
    copies = {rest.split()[-1]: rest.split()[0] for rest in _instructions("COPY")}
    assert copies["./data/grids"] == "data/grids" and workdir == "/app"
    assert copies["./rules"] == "rules"
    assert (ROOT / "data" / "grids" / "qujiang.geojson").is_file()
