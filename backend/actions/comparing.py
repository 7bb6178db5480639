"""Base model vs checkpoints on the same prompts and the same initial noise, scored.

GPU memory: a compare never competes with training for it. On a CUDA device it takes the same
OS lock a worker holds for that device (storage/workers.py) for as long as it has a model
loaded: while a run trains there, the compare is refused with a message saying so; while the
compare runs, a worker started for that device waits for the lock and exits, and the compare
starts a worker again when it finishes (queued runs then train). The model is freed and the CUDA
cache emptied before the lock is released. On the CPU there is no memory to share: a compare
runs at once, beside training.
"""

from __future__ import annotations

import gc
import os
import shutil
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ...storage import history, runs
from ...storage.registry import open_registry
from ...storage.workers import WorkerLock, ensure_worker, lock_file
from ..rewards import RewardSpec, check_spec
from ..solvers import SOLVERS
from .errors import ActionError, action

Home = str | os.PathLike | None
RunRef = int | str
Progress = Callable[[float, str], None]
MAX_IMAGES_PER_COLUMN = 64
MAX_STEPS = 200
KEEP_COMPARES = 10  # newest compare folders kept in a run folder


@dataclass(frozen=True)
class CompareRequest:
    run: RunRef
    checkpoints: list[int] = field(default_factory=list)  # steps; empty = the newest with a LoRA
    prompts: list[str] = field(default_factory=list)  # empty = the first 4 of the run's evaluation prompts
    seeds: list[int] = field(default_factory=lambda: [0])  # the same initial noise in every column
    solver: str | None = None  # default: the run's rollout solver
    steps: int | None = None  # default: the run's rollout steps
    rewards: list[str | RewardSpec] = field(default_factory=list)  # empty = the run's rewards and gold metrics
    device: str | None = None  # default: cuda when there is one, else cpu
    include_base: bool = True
    scale: int = 0  # enlarge saved images (nearest) to about 128 px when 0, so small models stay visible


@dataclass(frozen=True)
class CompareImage:
    path: Path  # inside the run folder: <run>/compare/<stamp>/
    prompt: str
    seed: int
    scores: dict[str, float]
    total: float  # weighted sum of the raw scores


@dataclass(frozen=True)
class CompareColumn:
    label: str  # "base" or "step 150"
    step: int | None
    images: list[CompareImage]  # prompt-major: every seed of prompt 1, then prompt 2, ...
    means: dict[str, float]  # each reward's mean over the column, and "total"


@dataclass(frozen=True)
class CompareResult:
    folder: Path
    columns: list[CompareColumn]
    reward_names: list[str]
    prompts: list[str]
    seeds: list[int]
    solver: str
    steps: int


def _device(requested: str | None):
    import torch

    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@contextmanager
def _device_lock(home: Path, device):
    """Hold the worker locks of a CUDA device while a model is on it (see the module docstring):
    its own (`cuda:N`) and, for the first GPU, the default worker's, which trains there."""
    if device.type != "cuda":
        yield
        return
    index = device.index or 0
    names = [f"cuda:{index}"] + ([None] if index == 0 else [])
    held = []
    try:
        for name in names:
            lock = WorkerLock(lock_file(home, name))
            if not lock.acquire():
                raise ActionError(
                    f"a run is training on {device}: a compare there would compete for its GPU memory. Wait for "
                    "it to finish, cancel it, or compare on another device (cpu works, slowly)"
                )
            held.append(lock)
        yield
    finally:
        for lock in held:
            lock.release()


def _plan(home: Home, request: CompareRequest):
    info = runs.get_run(home, request.run)
    config = info.config
    with_lora = {c.step: c for c in history.list_checkpoints(home, info.id) if c.lora_path is not None}
    wanted = list(request.checkpoints) or ([max(with_lora)] if with_lora else [])
    if not wanted and not request.include_base:
        raise ActionError(f"run {info.name!r} has no checkpoint with a LoRA yet; compare the base model alone")
    missing = [step for step in wanted if step not in with_lora]
    if missing:
        raise ActionError(
            f"run {info.name!r} has no LoRA checkpoint at step(s) {missing}; it has: {sorted(with_lora) or 'none yet'}"
        )
    solver = request.solver or config["neighbor"]["solver"]
    if solver not in SOLVERS:
        raise ActionError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    steps = request.steps if request.steps is not None else config["neighbor"]["steps"]
    if not 1 <= steps <= MAX_STEPS:
        raise ActionError(f"steps must be in 1..{MAX_STEPS}, got {steps}")
    prompts = [p.strip() for p in request.prompts if p.strip()]
    if not prompts:
        from .prompts import resolve_prompt_source

        prompts = resolve_prompt_source(home, config["eval"]["prompts"])[:4]
    seeds = [int(seed) for seed in request.seeds]
    if not seeds:
        raise ActionError("give at least one seed")
    if len(prompts) * len(seeds) > MAX_IMAGES_PER_COLUMN:
        raise ActionError(
            f"{len(prompts)} prompts × {len(seeds)} seeds is more than {MAX_IMAGES_PER_COLUMN} images per "
            "column; use fewer prompts or seeds"
        )
    if request.rewards:
        specs = [t if isinstance(t, RewardSpec) else RewardSpec.parse(t) for t in request.rewards]
    else:
        # The run's rewards make the total; its gold and monitor metrics are shown beside them at weight 0.
        specs = [RewardSpec.from_dict(r) for r in config["rewards"]]
        shown = [*config["eval"]["gold"], *config["eval"].get("monitor", [])]
        specs += [RewardSpec(g["name"], 0.0, g.get("options") or {}) for g in shown]
    unique = list({spec.name: spec for spec in reversed(specs)}.values())[::-1]  # a gold may repeat a reward
    for spec in unique:
        check_spec(spec)
    return info, [with_lora[step] for step in wanted], prompts, seeds, solver, steps, unique


@action
def compare(home: Home, request: CompareRequest, progress: Progress | None = None) -> CompareResult:
    """Sample the base model and each checkpoint's LoRA on the same prompts × seeds with one solver
    and step count, score every image, and save them under the run folder."""
    info, checkpoints, prompts, seeds, solver, steps, specs = _plan(home, request)
    report = progress or (lambda fraction, message: None)
    device = _device(request.device)
    registry_home = open_registry(home).home
    columns_total = len(checkpoints) + int(request.include_base)
    try:
        with _device_lock(registry_home, device):
            result = _run(
                info, checkpoints, prompts, seeds, solver, steps, specs, device, request, report, columns_total
            )
    finally:
        ensure_worker(home)  # queued runs may have waited for the device
    return result


def _run(info, checkpoints, prompts, seeds, solver, steps, specs, device, request, report, columns_total):
    import torch

    from ..models.registry import load_model
    from ..rewards import RewardSet
    from ..sampling import generate, to_pil
    from ..training.lora import apply_lora_file

    report(0.0, f"loading {info.model}")
    model = load_model(info.model, device)
    rewards = RewardSet.from_specs(specs, device=str(device))
    pairs = [(p, s) for p in prompts for s in seeds]
    folder = info.folder / "compare" / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # peft warns on every adapter after the first; several side by side is the point here.
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        for checkpoint in checkpoints:
            apply_lora_file(model, checkpoint.lora_path, name=f"step{checkpoint.step}")
    plan = ([("base", None)] if request.include_base else []) + [(f"step {c.step}", c.step) for c in checkpoints]
    columns = []
    try:
        for index, (label, step) in enumerate(plan):
            report(index / columns_total, f"sampling {label}")
            if checkpoints:
                if step is None:
                    model.transformer.disable_adapters()
                else:
                    model.transformer.enable_adapters()
                    model.transformer.set_adapters([f"step{step}"], weights=[1.0])
            images = torch.cat(
                [
                    generate(
                        model, [p for p, _ in pairs[i : i + 32]], [s for _, s in pairs[i : i + 32]],
                        solver=solver, steps=steps, shift=info.config["neighbor"].get("shift"),
                        resolution=info.config.get("resolution"),
                    )
                    for i in range(0, len(pairs), 32)
                ]
            )  # fmt: skip
            raw = rewards.score(images, [p for p, _ in pairs])
            total = rewards.weighted_sum(raw)
            scale = request.scale or max(1, 128 // images.shape[-1])
            saved = []
            for i, (prompt, seed) in enumerate(pairs):
                path = folder / f"{'base' if step is None else f'step{step:06d}'}-{i:03d}.png"
                to_pil(images[i].cpu(), scale=scale).save(path)
                scores = {name: raw[name][i].item() for name in rewards.names}
                saved.append(CompareImage(path, prompt, seed, scores, total[i].item()))
            means = {name: raw[name].float().mean().item() for name in rewards.names}
            means["total"] = total.float().mean().item()
            columns.append(CompareColumn(label, step, saved, means))
    finally:
        del model, rewards
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    _prune(folder.parent)
    report(1.0, "done")
    return CompareResult(folder, columns, list(columns[0].means)[:-1], prompts, seeds, solver, steps)


def _prune(parent: Path) -> None:
    for old in sorted(p for p in parent.iterdir() if p.is_dir())[:-KEEP_COMPARES]:
        shutil.rmtree(old, ignore_errors=True)
