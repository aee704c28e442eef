"""`firewatch` command lines checked against the real CLI parser (firewatch/cli.py), and the ones
the README's "Deployment" section documents."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex

from firewatch.cli import build_parser
from tests.deploy.tools import README

STACK = "docker compose -f docker/compose.yaml"


def parse(argv: list[str]) -> argparse.Namespace:
    """argv parsed as `firewatch` parses it; an AssertionError with argparse's message when it
    does not parse (an unknown subcommand or option, a bad value)."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"`firewatch {shlex.join(argv)}`: {stderr.getvalue()}") from None


def deployment_section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Deployment\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, 'README.md has no "## Deployment" section'
    return match.group(1)


def documented_services() -> dict[str, list[str]]:
    """The Deployment section's table of processes: service name -> its `firewatch` arguments."""
    rows = {}
    for line in deployment_section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[1].startswith("`firewatch "):
            service = re.match(r"`([\w-]+)`", cells[0])
            assert service, f"no service name in {line!r}"
            rows[service.group(1)] = shlex.split(cells[1].strip("`"))[1:]
    return rows


def documented_one_offs() -> list[list[str]]:
    """`firewatch` arguments of the commands the section runs in the stack's containers
    (`docker compose -f docker/compose.yaml exec SERVICE firewatch ...` or `run --rm SERVICE
    ...`, whose entrypoint is firewatch)."""
    found = []
    pattern = re.compile(
        re.escape(STACK) + r"\s+(?:exec\s+(?:-\S+\s+)*[\w-]+\s+firewatch|run\s+--rm\s+"
        r"(?:(?:-v|--volume)\s+\S+\s+)*[\w-]+)\s+(.*)$"
    )
    for block in re.findall(r"^```sh\n(.*?)^```", deployment_section(), re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            match = pattern.search(line)
            if match:
                found.append(shlex.split(match.group(1), comments=True))
    return found
