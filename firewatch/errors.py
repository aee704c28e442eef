"""The error hierarchy. Messages name the file, feature, rule or field at fault."""


class FirewatchError(Exception):
    """Root of every error firewatch raises on purpose."""


class GridError(FirewatchError):
    """A forest-grid file cannot be loaded or repaired (names the file and the feature)."""


class RulesError(FirewatchError):
    """A rule file is invalid (names the file and the rule)."""


class InputError(FirewatchError):
    """An input file cannot be read at all (unreadable, unknown format); bad records are rejects."""
