"""Rule models and loading; the YAML itself lives in the top-level rules/ directory."""

from firewatch.rules.load import load_rules
from firewatch.rules.model import Mask, MaskReason, RuleSet

__all__ = ["Mask", "MaskReason", "RuleSet", "load_rules"]
