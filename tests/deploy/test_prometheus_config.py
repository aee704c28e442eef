"""docker/prometheus/prometheus.yml passes `promtool check config` (which checks the rule files
it loads too) and scrapes every long-running firewatch process of docker/compose.yaml where that
process serves its metrics."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.stack import metrics_port, services
from tests.deploy.tools import PROMETHEUS_CONFIG, RULES, require, run, said


def _jobs() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_the_config_passes_promtool_check_config() -> None:
    promtool = require("promtool")
    result = run(promtool, "check", "config", PROMETHEUS_CONFIG.name, cwd=PROMETHEUS_CONFIG.parent)
    assert result.returncode == 0, said(result)
    # the rule_files glob found firewatch's rules, and promtool checked them
    rules = RULES.relative_to(PROMETHEUS_CONFIG.parent)
    assert "SUCCESS: 1 rule files found" in result.stdout, said(result)
    assert f"Checking {rules}\n  SUCCESS:" in result.stdout, said(result)


def test_the_jobs_scrape_each_process_on_its_metrics_port() -> None:
    """The job names the alert rules use, each aimed at the compose service and port that serve
    those metrics: the API on its own port, the workers and the dispatcher on --metrics-port."""
    jobs = _jobs()
    compose = services()
    api = jobs["firewatch-api"]["static_configs"][0]["targets"]
    assert api == [f"api:{metrics_port(compose['api'], '--port')}"]
    # every replica of the worker and dispatcher services, by Compose's DNS
    for name in ("worker", "dispatcher"):
        (replicas,) = jobs[f"firewatch-{name}"]["dns_sd_configs"]
        assert replicas["names"] == [name] and replicas["type"] == "A"
        assert replicas["port"] == metrics_port(compose[name], "--metrics-port")
