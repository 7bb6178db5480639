"""Checking and queueing a run. Everything is checked before anything is written: the settings
(types and ranges), the model's files, the prompts (non-empty), every reward and its weights."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...storage.home import resolve_home
from ...storage.runs import get_run, insert_run
from ...storage.workers import ensure_worker, worker_alive
from ..models.memory import MemoryEstimate, plan_memory
from ..models.registry import check_model
from ..rewards import check_spec
from ..training.config import TrainConfig
from .errors import ActionError, action
from .prompts import freeze_prompt_source, resolve_prompt_source

Home = str | os.PathLike | None
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class RunRequest:
    """A run to queue: `config` is a config mapping (as in configs/*.yaml, defaults filled in for
    what it leaves out) or a TrainConfig."""

    config: dict[str, Any] | TrainConfig
    name: str | None = None  # default: the config's name; made unique with -2, -3, ...
    start_worker: bool = True  # make sure a background worker will train it
    # Refuse a real-model run whose estimated peak exceeds this (None: the total memory of the
    # config's CUDA device when there is one, else no limit).
    gpu_memory_gb: float | None = None


@dataclass(frozen=True)
class ValidRun:
    config: TrainConfig
    prompts: list[str]
    eval_prompts: list[str]
    stored: dict[str, Any]  # what the registry keeps: the full config, file and saved sets frozen to lists
    prompt_set: str | None  # the set's name, when the prompts came from one
    memory: MemoryEstimate | None = None  # peak GPU memory estimate (real models only)


@dataclass(frozen=True)
class QueuedRun:
    run_id: int
    name: str
    folder: Path
    worker_pid: int | None  # a worker started for it, or None when one was already alive
    worker_alive: bool
    memory: MemoryEstimate | None = None  # peak GPU memory estimate (real models only)


@action
def validate_run(home: Home, request: RunRequest) -> ValidRun:
    """The checked run, or ActionError naming the first problem and its fix. Writes nothing."""
    data = request.config.to_dict() if isinstance(request.config, TrainConfig) else dict(request.config)
    if request.name is not None:
        if not request.name.strip():
            raise ActionError("the run name is empty; type a name or leave it to the config")
        data["name"] = request.name.strip()
    config = TrainConfig.from_dict(data)
    check_model(config.model)
    memory = plan_memory(config, request.gpu_memory_gb, config.device)
    if memory is not None and not memory.fits:
        raise ActionError(memory.summary())
    prompts = resolve_prompt_source(home, config.prompts)
    eval_prompts = resolve_prompt_source(home, config.eval.prompts)
    for spec in (*config.rewards, *config.eval.gold, *config.eval.monitor):
        check_spec(spec)
    stored = config.to_dict()
    stored["prompts"] = freeze_prompt_source(home, stored["prompts"])
    stored["eval"]["prompts"] = freeze_prompt_source(home, stored["eval"]["prompts"])
    prompt_set = config.prompts if isinstance(config.prompts, str) else None
    return ValidRun(config, prompts, eval_prompts, stored, prompt_set, memory)


@action
def queue_run(home: Home, request: RunRequest) -> QueuedRun:
    """Check and queue a run; with `start_worker`, make sure a worker is alive to train it (the
    caller's process never trains)."""
    valid = validate_run(home, request)
    run_id = insert_run(home, valid.stored, valid.prompt_set)
    info = get_run(home, run_id)
    pid = ensure_worker(home) if request.start_worker else None
    alive = pid is not None or worker_alive(resolve_home(home))
    return QueuedRun(run_id, info.name, info.folder, pid, alive, valid.memory)


@action
def ensure_worker_alive(home: Home = None) -> int | None:
    """Start a background worker if runs are queued and none is alive; its pid, else None."""
    return ensure_worker(home)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: dict[str, Any]


@action
def list_presets() -> list[Preset]:
    """The example configs shipped in configs/, as starting points for a new run."""
    presets = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        first = text.splitlines()[0] if text else ""
        description = first.lstrip("# ").strip() if first.startswith("#") else path.stem
        presets.append(Preset(path.stem, description, yaml.safe_load(text) or {}))
    return presets


def load_preset(name: str) -> dict[str, Any]:
    """One preset's config mapping (a copy), by its file stem, e.g. `tiny_neighbor_grpo`."""
    for preset in list_presets():
        if preset.name == name:
            return yaml.safe_load(yaml.safe_dump(preset.config))
    raise ActionError(f"no preset {name!r}; presets: {', '.join(p.name for p in list_presets())}")
