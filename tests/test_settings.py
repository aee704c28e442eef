"""Settings: defaults, FIREWATCH_* variables, CLI overrides, and errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firewatch.errors import FirewatchError
from firewatch.settings import Settings


def test_defaults_without_any_variable() -> None:
    settings = Settings.from_env({})
    assert settings.kafka_bootstrap == "127.0.0.1:39092" and settings.kafka_partitions == 4
    assert settings.state_store == "memory://" and settings.snapshot_every == 1.0
    assert settings.grid == Path("data/grids/qujiang.geojson")


def test_variables_are_parsed_and_overrides_win() -> None:
    env = {
        "FIREWATCH_KAFKA_PARTITIONS": "12",
        "FIREWATCH_SNAPSHOT_EVERY": "2.5",
        "FIREWATCH_STATE_DIR": "/srv/faust",
        "FIREWATCH_KAFKA_BOOTSTRAP": "kafka-1:9092",
        "FIREWATCH_REDIS_URL": "",  # empty: as if unset
    }
    settings = Settings.from_env(env, kafka_bootstrap="kafka-2:9092", grid=None)
    assert settings.kafka_partitions == 12 and settings.snapshot_every == 2.5
    assert settings.state_dir == Path("/srv/faust") and settings.redis_url is None
    assert settings.kafka_bootstrap == "kafka-2:9092"  # the CLI flag over the variable
    assert settings.grid == Path("data/grids/qujiang.geojson")  # None: not given


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FIREWATCH_KAFKA_PARTITIONS", "0"),
        ("FIREWATCH_KAFKA_PARTITIONS", "four"),
        ("FIREWATCH_SNAPSHOT_EVERY", "-1"),
        ("FIREWATCH_MAX_LINE_BYTES", "10"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(FirewatchError, match=f"invalid settings: {name}: "):
        Settings.from_env({name: value})


def test_settings_built_in_code_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREWATCH_KAFKA_PARTITIONS", "7")
    assert Settings().kafka_partitions == 4  # only from_env reads variables, from its argument
    assert Settings.from_env({"FIREWATCH_KAFKA_PARTITIONS": "9"}).kafka_partitions == 9


def test_the_readme_documents_every_variable_and_no_other() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `FIREWATCH_")]
    documented = set(re.findall(r"FIREWATCH_[A-Z_]*[A-Z]", "\n".join(rows)))
    names = Settings.env_names()
    assert names["redis_url"] == "FIREWATCH_REDIS_URL"
    assert documented <= set(names.values())
    for (
        name
    ) in names.values():  # the topics' row abbreviates: `FIREWATCH_TOPIC_DETECTIONS`, `_LOCATED`
        short = "`_" + name.removeprefix("FIREWATCH_TOPIC_") + "`"
        assert name in documented or (name.startswith("FIREWATCH_TOPIC_") and short in readme), name
