"""Every PromQL query firewatch ships parses (promtool, through a generated rules file) and names
only series that firewatch exports (its registry, `firewatch.metrics.exported_series()`), that
its recording rules record, or Prometheus' own `up`: the Grafana dashboard's panels, the README's
PromQL cookbook and the rules themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from firewatch.metrics import exported_series
from tests.deploy.promql import (
    Query,
    dashboard_queries,
    metric_names,
    readme_queries,
    recorded_names,
    rule_queries,
    substitute_macros,
    write_check_rules,
)
from tests.deploy.tools import DASHBOARD, README, RULES, require, run, said

PROMETHEUS_OWN = {"up"}  # what Prometheus records for every scrape target


def _shipped() -> list[Query]:
    queries = dashboard_queries(DASHBOARD) + readme_queries(README)
    return [Query(q.where, substitute_macros(q.expr)) for q in queries]


def test_there_are_queries_to_check() -> None:
    assert len(dashboard_queries(DASHBOARD)) >= 20
    assert len(readme_queries(README)) >= 4  # the cookbook's four questions at least


def test_every_dashboard_and_cookbook_query_parses(tmp_path: Path) -> None:
    promtool = require("promtool")
    queries = _shipped()
    left = [q.where for q in queries if "$" in q.expr]
    assert not left, f"Grafana variables the check does not know: {left}"
    records = write_check_rules(queries, tmp_path / "queries.rules.yml")
    result = run(promtool, "check", "rules", tmp_path / "queries.rules.yml")
    refused = [
        f"{q.where}: {q.expr}" for name, q in records.items() if f'"{name}"' in result.stdout
    ]
    assert result.returncode == 0, f"{said(result)}\n" + "\n".join(refused)
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout, said(result)


def test_a_query_that_does_not_parse_is_named(tmp_path: Path) -> None:
    """The check above can fail, and says which query."""
    promtool = require("promtool")
    queries = [
        Query("good", "sum(rate(firewatch_ingest_rejects_total[5m]))"),
        Query("bad", "sum by (reason (rate(firewatch_ingest_rejects_total[5m]))"),
    ]
    write_check_rules(queries, tmp_path / "queries.rules.yml")
    result = run(promtool, "check", "rules", tmp_path / "queries.rules.yml")
    assert result.returncode != 0, said(result)
    assert "check:query_1" in result.stdout + result.stderr, said(result)


SOURCES = {
    "dashboard": (dashboard_queries, DASHBOARD),
    "cookbook": (readme_queries, README),
    # the recorded names the others may use are known only because the rules that record
    # them read exported series (or earlier records) themselves
    "rules": (rule_queries, RULES),
}


@pytest.mark.parametrize("source", SOURCES)
def test_every_query_names_only_what_firewatch_exports(source: str) -> None:
    read, path = SOURCES[source]
    queries = read(path)
    known = exported_series() | recorded_names(RULES) | PROMETHEUS_OWN
    unknown = {
        f"{q.where}: {name}"
        for q in queries
        for name in metric_names(substitute_macros(q.expr))
        if name not in known
    }
    assert not unknown, "\n".join(sorted(unknown))


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (stage, le) (rate(x_bucket{stage="locate"}[5m])))',
            {"x_bucket"},
        ),
        (
            "sum(rate(a_total[10m])) / (sum(rate(b_total[10m])) or vector(0))",
            {"a_total", "b_total"},
        ),
        ('absent(up{job="firewatch-worker"} == 1)', {"up"}),
        (
            "max by (district) (increase(w_total[1d] offset 1h)) > 1e3 unless on (d) c:r:s",
            {
                "w_total",
                "c:r:s",
            },
        ),
        ('sort_desc(sum without (instance) (label_replace(m, "a", "$1", "b", "(.*)")))', {"m"}),
    ],
)
def test_metric_names_are_read_from_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_histogram_s_base_name_is_not_a_series() -> None:
    """Histograms are queried by `_bucket`, `_sum` or `_count`: the bare name selects nothing,
    and the check above refuses it."""
    series = exported_series()
    assert "firewatch_engine_batch_duration_seconds_bucket" in series
    assert "firewatch_engine_batch_duration_seconds" not in series
    assert "firewatch_engine_detections_total" in series
