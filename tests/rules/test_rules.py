"""Rule files: the shipped set loads; each bad fixture fails with the file and the rule named."""

from datetime import timedelta
from pathlib import Path

import pytest

from firewatch.cli import main
from firewatch.errors import RulesError
from firewatch.rules import load_rules
from firewatch.rules.model import parse_duration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def test_shipped_rules_carry_the_documented_defaults() -> None:
    rules = load_rules(ROOT / "rules")
    assert rules.sources.camera.open_confidence == 0.8
    assert rules.sources.camera.suspect_confidence == 0.5
    assert rules.sources.camera.repeat_window == timedelta(minutes=10)
    assert rules.sources.sensor.thresholds == {"temperature_c": 60, "co_ppm": 50}
    assert rules.sources.satellite.open_confidence == 0.3
    assert rules.sources.satellite.suppress_static is True
    assert rules.corroboration.window == timedelta(minutes=30)
    assert rules.incidents.merge_radius_km == 2.0
    assert rules.incidents.inactivity == timedelta(hours=24)
    assert rules.incidents.grace == timedelta(minutes=10)
    assert rules.sources.max_future == timedelta(minutes=5)
    assert {m.name for m in rules.masks} == {
        "qujiang-cement-works",
        "qujiang-spring-controlled-burn",
    }


@pytest.mark.parametrize(
    ("fixture", "file", "fragment"),
    [
        ("bad_confidence", "detection.yaml", "rule sources.camera.open_confidence"),
        ("unknown_key", "detection.yaml", "rule sources.camera.repeat_windw"),
        ("bad_duration", "incidents.yaml", "rule incidents.inactivity"),
        ("bad_mask", "masks.yaml", "rule masks[0] 'qujiang-cement-works'"),
        ("duplicate_section", "extra.yaml", "section 'incidents' is already defined in"),
        ("unknown_section", "extra.yaml", "unknown section 'routing_rules'"),
        ("bad_yaml", "severity.yaml", "not valid YAML"),
        ("missing_section", "", "rule severity: Field required"),
        ("inverted_camera", "detection.yaml", "suspect_confidence must not exceed open_confidence"),
        ("bad_max_future", "detection.yaml", "rule sources.max_future: Value error, '-5m'"),
    ],
)
def test_bad_rule_file_names_file_and_rule(fixture: str, file: str, fragment: str) -> None:
    with pytest.raises(RulesError) as err:
        load_rules(FIXTURES / fixture)
    message = str(err.value)
    assert fragment in message
    assert str(FIXTURES / fixture / file) in message


def test_rules_written_before_max_future_existed_load_with_its_default(tmp_path: Path) -> None:
    for path in (ROOT / "rules").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.name == "detection.yaml":
            assert "  max_future: 5m\n" in text
            text = text.replace("  max_future: 5m\n", "")
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    assert load_rules(tmp_path).sources.max_future == timedelta(minutes=5)


def test_not_a_directory() -> None:
    with pytest.raises(RulesError, match="not a directory"):
        load_rules(FIXTURES / "nope")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600), ("24h", 86400), ("1h30m", 5400), ("45s", 45), (90, 90), (1.5, 1.5)],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "10 minutes", "", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_rules_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(ROOT / "rules")]) == 0
    assert "ok (2 masks)" in capsys.readouterr().out
    assert main(["rules", "check", str(FIXTURES / "bad_confidence")]) == 2
    assert "open_confidence" in capsys.readouterr().err
