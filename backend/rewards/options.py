"""Typed reads of a reward's options, which arrive as strings from the command line and as YAML
values from configs; every error names the reward, the option and what a good value looks like."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..world.shapes import COLOURS


class Options:
    def __init__(self, reward: str, values: dict[str, Any]):
        self.reward = reward
        self.values = dict(values)

    def _fail(self, key: str, expected: str) -> ValueError:
        return ValueError(f"reward {self.reward!r}: option {key}={self.values[key]!r} is not {expected}")

    def has(self, key: str) -> bool:
        return self.values.get(key) not in (None, "")

    def text(self, key: str, default: str | None = None) -> str | None:
        return str(self.values[key]) if self.has(key) else default

    def require(self, key: str, example: str) -> str:
        if not self.has(key):
            raise ValueError(
                f'reward {self.reward!r} needs option {key!r}, e.g. --reward "{self.reward} {key}={example}" '
                f"or options: {{{key}: {example}}} in a config"
            )
        return str(self.values[key])

    def number(
        self, key: str, default: float | None, low: float | None = None, high: float | None = None
    ) -> float | None:
        """A finite number, optionally within [low, high]."""
        if not self.has(key):
            return default
        try:
            value = float(self.values[key])
        except (TypeError, ValueError):
            raise self._fail(key, "a number") from None
        if not math.isfinite(value):
            raise self._fail(key, "a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self._fail(key, f"a number in [{low:g}, {high:g}]" if high is not None else f"at least {low:g}")
        return value

    def integer(self, key: str, default: int | None, minimum: int = 1) -> int | None:
        if not self.has(key):
            return default
        try:
            value = int(self.values[key])
        except (TypeError, ValueError):
            raise self._fail(key, "an integer") from None
        if value < minimum:
            raise self._fail(key, f"an integer of at least {minimum}")
        return value

    def path(self, key: str) -> Path | None:
        return Path(str(self.values[key])).expanduser() if self.has(key) else None

    def rgb(self, key: str) -> tuple[float, float, float]:
        """A colour as `r,g,b` in 0..1, `#rrggbb`, or a shapes-world colour name."""
        value = self.values[key]
        expected = f"a colour: r,g,b in 0..1 (e.g. 0.9,0.1,0.1), #rrggbb, or one of {', '.join(COLOURS)}"
        if isinstance(value, str) and value.lower() in COLOURS:
            return COLOURS[value.lower()]
        if isinstance(value, str) and value.startswith("#") and len(value) == 7:
            try:
                return tuple(int(value[i : i + 2], 16) / 255 for i in (1, 3, 5))
            except ValueError:
                raise self._fail(key, expected) from None
        parts = value.split(",") if isinstance(value, str) else value
        try:
            rgb = tuple(float(part) for part in parts)
        except (TypeError, ValueError):
            raise self._fail(key, expected) from None
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise self._fail(key, expected)
        return rgb
