"""The small typed description of a reward that the CLI, configs, registry, dashboard and ComfyUI
nodes all share: a registered name, a weight, and options (such as a weights path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RewardSpec:
    name: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> RewardSpec:
        """`name` or `name:weight` (as typed on the command line), optionally followed by
        space-separated `key=value` options: `clip:0.5 arch=ViT-B-32 path=/models/clip.safetensors`."""
        head, *option_tokens = text.split() or [""]
        name, _, weight = head.partition(":")
        if not name:
            raise ValueError(f"empty reward name in {text!r}; write NAME or NAME:WEIGHT")
        options = {}
        for token in option_tokens:
            key, equals, value = token.partition("=")
            if not key or not equals:
                raise ValueError(f"bad reward option {token!r} in {text!r}; write NAME:WEIGHT key=value ...")
            options[key] = value
        try:
            return cls(name=name, weight=float(weight) if weight else 1.0, options=options)
        except ValueError:
            raise ValueError(f"bad reward weight in {text!r}; write NAME:WEIGHT with a number") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | str) -> RewardSpec:
        if isinstance(data, str):
            return cls.parse(data)
        unknown = set(data) - {"name", "weight", "options"}
        if unknown:
            raise ValueError(f"unknown reward field(s) {sorted(unknown)}; allowed: name, weight, options")
        if "name" not in data:
            raise ValueError("a reward needs a 'name'")
        return cls(
            name=str(data["name"]), weight=float(data.get("weight", 1.0)), options=dict(data.get("options") or {})
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "options": dict(self.options)}

    def to_text(self) -> str:
        """The `parse` form; round-trips when no option value contains whitespace."""
        head = self.name if self.weight == 1.0 else f"{self.name}:{self.weight!r}"
        return " ".join([head, *(f"{key}={value}" for key, value in self.options.items())])
