"""Reading one table of a curation config with errors that name the field (`sources[2].question`).

Configs are TOML (or JSON) files; every stage reads its own table through a `Table`, which checks
types as values are taken and, at the end, rejects keys nobody asked for (a typo is an error, not a
silently ignored setting).
"""

from __future__ import annotations

from typing import Any

from s1.curate.io import CurateError

_MISSING: Any = object()


class Table:
    """A config table being read. Getters check the type and record the key; `done()` rejects the rest."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise CurateError(f"{where} must be a table (key = value pairs), got {type(data).__name__}")
        self.data, self.where = data, where
        self._used: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: Any) -> Any:
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise CurateError(f"{self.path(key)} is required")
        return default

    def str(self, key: str, default: Any = _MISSING, choices: tuple[str, ...] | None = None) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value:
            raise CurateError(f"{self.path(key)} must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise CurateError(f"{self.path(key)} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def int(self, key: str, default: Any = _MISSING, minimum: int | None = None) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise CurateError(f"{self.path(key)} must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise CurateError(f"{self.path(key)} must be >= {minimum}, got {value}")
        return value

    def float(self, key: str, default: Any = _MISSING, minimum: float | None = None) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CurateError(f"{self.path(key)} must be a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise CurateError(f"{self.path(key)} must be >= {minimum}, got {value}")
        return float(value)

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise CurateError(f"{self.path(key)} must be true or false, got {value!r}")
        return value

    def strs(self, key: str, default: Any = _MISSING) -> Any:
        """A list of non-empty strings; a single string counts as a list of one."""
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise CurateError(f"{self.path(key)} must be a list of non-empty strings, got {value!r}")
        return tuple(value)

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        """The value unchecked (the caller validates it)."""
        return self._get(key, default)

    def table(self, key: str, default: Any = _MISSING) -> Table:
        value = self._get(key, {} if default is _MISSING else default)
        return Table(value, self.path(key))

    def tables(self, key: str) -> list[Table]:
        """An array of tables (`[[key]]`); absent means none."""
        value = self._get(key, [])
        if not isinstance(value, list):
            raise CurateError(f"{self.path(key)} must be an array of tables ([[{key}]]), got {type(value).__name__}")
        return [Table(v, f"{self.path(key)}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            known = ", ".join(sorted(self._used)) or "none"
            raise CurateError(f"{self.where or 'config'}: unknown key(s) {', '.join(unknown)}; known keys: {known}")
