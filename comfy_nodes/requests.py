"""What the nodes' widget values mean, as plain Python: no ComfyUI import, so it is unit-tested
without ComfyUI. Each function turns widget values into what the actions layer takes, or raises
ActionError with the message the node shows."""

from __future__ import annotations

import json
from typing import Any

import yaml

from ..backend.actions import ActionError
from ..backend.rewards import check_spec
from ..backend.rewards.spec import RewardSpec
from ..backend.training.config import TrainConfig, apply_override

TEXT_SOURCE = "text below"
FILE_SOURCE = "file below"


def prompt_source(source: str, text: str, file: str) -> str | list[str]:
    """A Prompt Set node's choice → what a config's `prompts:` takes (a set name, a file, a list)."""
    if source == TEXT_SOURCE:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
        if not prompts:
            raise ActionError("the prompt set is empty: write one prompt per line, or choose a set or a file")
        return prompts
    if source == FILE_SOURCE:
        if not file.strip():
            raise ActionError("no prompt file given: type the path of a .txt, .csv or .jsonl file")
        return file.strip()
    return source


def parse_options(text: str) -> dict[str, Any]:
    """`key=value` pairs separated by spaces or new lines; values read as YAML scalars."""
    options = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ActionError(f"reward option {item!r} is not key=value (e.g. target=0.5 or quality=90)")
        options[key] = yaml.safe_load(value) if value else ""
    return options


def add_reward(previous: list[dict] | None, name: str, weight: float, options: str) -> list[dict]:
    """The reward list with one more reward, checked as queueing checks it: a known name, valid
    options, and the weights files it needs present."""
    spec = RewardSpec.from_dict({"name": name, "weight": float(weight), "options": parse_options(options)})
    check_spec(spec)
    return [*(previous or []), spec.to_dict()]


# Training Config node widgets: (widget id, dotted config key). Defaults come from TrainConfig,
# so the node and the CLI can never disagree.
CONFIG_FIELDS = (
    ("algorithm", "algorithm"),
    ("iterations", "iterations"),
    ("group_size", "group_size"),
    ("prompts_per_iteration", "prompts_per_iteration"),
    ("learning_rate", "optimizer.learning_rate"),
    ("lora_rank", "lora.rank"),
    ("sigma_p", "neighbor.sigma_p"),
    ("solver", "neighbor.solver"),
    ("steps", "neighbor.steps"),
    ("seed", "seed"),
    ("checkpoint_every", "checkpoint_every"),
    ("eval_every", "eval.every"),
    ("device", "device"),
)


def config_default(dotted: str) -> Any:
    value: Any = TrainConfig()
    for key in dotted.split("."):
        value = getattr(value, key)
    return value


def build_config(widgets: dict[str, Any], extra: str = "") -> dict[str, Any]:
    """The Training Config node's widgets (plus `extra` YAML for any other setting) → a partial
    config mapping; checked against TrainConfig so a typo fails here, not in the worker."""
    data: dict[str, Any] = {}
    for widget, dotted in CONFIG_FIELDS:
        if widget in widgets:
            apply_override(data, dotted, widgets[widget])
    if extra.strip():
        try:
            more = yaml.safe_load(extra)
        except yaml.YAMLError as error:
            raise ActionError(f"the extra settings are not valid YAML: {error}") from None
        if not isinstance(more, dict):
            raise ActionError("the extra settings must be YAML `key: value` lines, e.g. `neighbor: {anchors: 2}`")
        _merge(data, more)
    TrainConfig.from_dict({**data, "name": "check"})  # ConfigError (a ValueError) names the field
    return data


def _merge(into: dict, more: dict) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def run_config(model: str, prompts: str | list[str], rewards: list[dict], config: dict | None) -> dict[str, Any]:
    """What Launch Training queues: the config node's settings with the model, prompts and rewards."""
    data = json.loads(json.dumps(config or {}))  # a copy: ComfyUI caches node outputs
    data.update(model=model, prompts=prompts, rewards=list(rewards))
    return data


def status_text(info: Any, latest: dict[str, tuple[int, float]], lora: str | None) -> str:
    """The Run Status node's summary (`info` is a RunInfo): one line per fact a user looks for."""
    total = f"/{info.progress_total}" if info.progress_total else ""
    lines = [f"run {info.id} ({info.name}): {info.status}, iteration {info.progress_step}{total}"]
    for label, key in (("reward", "reward"), ("held-out reward", "eval/reward"), ("gold metric", "eval/gold")):
        if key in latest:
            step, value = latest[key]
            lines.append(f"{label}: {value:.4f} (step {step})")
    if info.error:
        lines.append(info.error.strip().splitlines()[-1][:300])
    if info.cancel_requested and info.status == "running":
        lines.append("cancel requested: it stops after its next checkpoint")
    lines.append(f"latest LoRA: {lora}" if lora else "no LoRA checkpoint yet")
    return "\n".join(lines)


def progress_message(info: Any, latest: dict[str, tuple[int, float]]) -> dict[str, Any]:
    """What the browser receives while a run trains (JSON)."""
    return {
        "run_id": info.id, "name": info.name, "status": info.status, "step": info.progress_step,
        "total": info.progress_total, "metrics": {key: value for key, (_, value) in latest.items()},
    }  # fmt: skip


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise ActionError(f"seeds must be whole numbers separated by commas, got {text!r}") from None
    if not seeds:
        raise ActionError("give at least one seed, e.g. 0, 1, 2, 3")
    return seeds
