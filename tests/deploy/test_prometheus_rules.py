"""firewatch's alert and recording rules (docker/prometheus/rules/firewatch.rules.yml) pass
`promtool check rules`, and their unit tests (docker/prometheus/tests/*.test.yml) pass
`promtool test rules`: for every alert, input series that fire it and series that do not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import RULE_TESTS, RULES, require, run, said

UNIT_TESTS = sorted(RULE_TESTS.glob("*.test.yml"))
# what issue #10 asks an alert for, by the alert that does it
ALERTS = {
    "FirewatchResponseRateLow",  # response rate under 85% over 24 h
    "FirewatchOrderOverdue",  # an order unacknowledged past its SLA
    "FirewatchConsumerLagGrowing",  # consumer lag growing for 5 min
    "FirewatchRejectSpike",  # a spike of rejects
    "FirewatchProcessDown",  # a worker or the dispatcher down (a target that does not answer)
    "FirewatchNoWorker",  # ... and none of them at all
    "FirewatchNoDispatcher",
    "FirewatchNoApi",
    "FirewatchDistrictSilent",  # no detections from a district for an hour
    "FirewatchCellsBlind",  # cells no device watches for an hour (device health, issue #12)
}


def _alerts() -> set[str]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_the_rules_pass_promtool_check_rules() -> None:
    promtool = require("promtool")
    result = run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, said(result)
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    count = sum(len(g["rules"]) for g in doc["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout, said(result)


def test_the_rules_have_the_alerts_the_issue_asks_for() -> None:
    assert _alerts() == ALERTS


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda p: p.name)
def test_the_rule_unit_tests_pass(unit_test: Path) -> None:
    promtool = require("promtool")
    result = run(promtool, "test", "rules", unit_test.relative_to(RULE_TESTS), cwd=RULE_TESTS)
    assert result.returncode == 0, said(result)
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout, said(result)


def test_every_alert_is_tested_firing_and_silent() -> None:
    """Each alert has an evaluation that expects it to fire and one that expects nothing."""
    fires: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["rule_files"] == ["../rules/firewatch.rules.yml"], path.name
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fires >= _alerts(), f"never expected to fire: {sorted(_alerts() - fires)}"
    assert silent >= _alerts(), f"never expected to stay silent: {sorted(_alerts() - silent)}"


def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """promtool test rules says FAILED, and exits non-zero, when an alert does not behave as its
    test expects: the unit tests above can fail."""
    promtool = require("promtool")
    test = yaml.safe_load((RULE_TESTS / "order_overdue.test.yml").read_text(encoding="utf-8"))
    test["rule_files"] = [str(RULES)]
    test["tests"][0]["alert_rule_test"][0]["eval_time"] = "5m"  # it fires at 5m, not silent
    broken = tmp_path / "broken.test.yml"
    broken.write_text(yaml.safe_dump(test, allow_unicode=True), encoding="utf-8")
    result = run(promtool, "test", "rules", broken)
    assert result.returncode != 0, said(result)
    assert "FAILED" in result.stdout + result.stderr, said(result)
