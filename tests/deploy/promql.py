"""The PromQL firewatch ships (alert and recording rules, the Grafana dashboard's panels, the
README's cookbook) and what it names, for the checks in test_queries.py.

Parsing is promtool's (a generated rules file, `promtool check rules`); the metric names are
taken here from the text, after removing what cannot be one (strings, label matchers, `by (...)`
lists, ranges, offsets and function calls)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Grafana's global variables, with a value for the check (the dashboard uses no others)
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d"}
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_AT = re.compile(r"@\s*[^\s)]+")
_NAME = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


@dataclass(frozen=True)
class Query:
    where: str  # e.g. 'dashboard panel 7 "Detections/s by source" A', 'README cookbook 2'
    expr: str


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names an expression selects."""
    text = _STRING.sub('""', expr)
    for pattern in (_MATCHERS, _GROUPING, _RANGE, _OFFSET, _AT):
        text = pattern.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def substitute_macros(expr: str) -> str:
    """Grafana's variables replaced by values promtool accepts; any other `$` stays, to fail."""
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


def dashboard_queries(path: Path) -> list[Query]:
    """Every target's `expr` of every panel (rows' nested panels too)."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    queries = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            where = f'dashboard panel {panel["id"]} "{panel.get("title", "")}" {target["refId"]}'
            queries.append(Query(where, target["expr"]))
    return queries


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))
    return out


def readme_queries(path: Path) -> list[Query]:
    """The README's ```promql blocks, one query each."""
    blocks = re.findall(r"^```promql\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)
    return [Query(f"README promql block {i}", block.strip()) for i, block in enumerate(blocks, 1)]


def rule_queries(path: Path) -> list[Query]:
    """The `expr` of every recording and alert rule."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Query(f"rule {rule.get('record') or rule.get('alert')}", rule["expr"])
        for group in doc["groups"]
        for rule in group["rules"]
    ]


def recorded_names(path: Path) -> set[str]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        rule["record"] for group in doc["groups"] for rule in group["rules"] if "record" in rule
    }


def write_check_rules(queries: list[Query], path: Path) -> dict[str, Query]:
    """A rules file with each query as a recording rule, for `promtool check rules`; returns
    the record names, for naming the query promtool refuses."""
    records = {f"check:query_{i}": q for i, q in enumerate(queries)}
    rules = [{"record": name, "expr": q.expr} for name, q in records.items()]
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}), "utf-8")
    return records
