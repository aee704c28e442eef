"""Load a rule directory (rules/*.yaml) into a RuleSet; errors name the file and the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from firewatch.errors import RulesError
from firewatch.rules.model import SECTIONS, RuleSet


def load_rules(directory: Path) -> RuleSet:
    """Read every *.yaml / *.yml file of `directory`, merge their sections, validate."""
    if not directory.is_dir():
        raise RulesError(f"{directory}: not a directory of rule files")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise RulesError(f"{directory}: no *.yaml rule files")
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for path in files:
        for section, body in _read(path).items():
            if section not in SECTIONS:
                raise RulesError(
                    f"{path}: unknown section {section!r}; known: {', '.join(sorted(SECTIONS))}"
                )
            if section in merged:
                raise RulesError(
                    f"{path}: section {section!r} is already defined in {origin[section]}"
                )
            merged[section] = body
            origin[section] = path
    try:
        return RuleSet.model_validate(merged)
    except ValidationError as exc:
        raise RulesError(_explain(exc, merged, origin, directory)) from None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RulesError(f"{path}: a rule file is a mapping of sections, not {type(data).__name__}")
    return data


def _explain(
    exc: ValidationError, merged: dict[str, Any], origin: dict[str, Path], directory: Path
) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        section = str(loc[0]) if loc else ""
        where = origin.get(section, directory)
        lines.append(f"{where}: rule {_rule_name(loc, merged)}: {err['msg']}")
    return "\n".join(lines)


def _rule_name(loc: list[Any], merged: dict[str, Any]) -> str:
    """('masks', 2, 'polygon') -> "masks[2] 'quarry': polygon"; other paths -> dotted."""
    if not loc:
        return "(top level)"
    if loc[0] == "masks" and len(loc) > 1 and isinstance(loc[1], int):
        masks = merged.get("masks")
        name = ""
        if isinstance(masks, list) and loc[1] < len(masks) and isinstance(masks[loc[1]], dict):
            name = f" {masks[loc[1]].get('name', '')!r}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"masks[{loc[1]}]{name}" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in loc)
