"""Typed training configuration, loaded from YAML or a dict and validated at the edge.

Every choice the paper leaves open is a field here with our default, marked "[ours]".
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from ..rewards.independence import check_gold_independent
from ..rewards.spec import RewardSpec
from ..solvers import SOLVERS
from .config_ranges import range_problems

ALGORITHMS = ("neighbor_grpo", "sde_grpo")


class ConfigError(ValueError):
    """A config value is wrong; the message names the field and what is allowed."""


@dataclass
class NeighborSettings:
    """Neighbor GRPO (PAPER.md §2–6)."""

    sigma_p: float = 0.6  # Eq. 7 perturbation; paper 0.3 on FLUX, 0.6 measured better on the tiny model
    solver: str = "dpmpp2m"  # rollout solver [paper: DPM-Solver++]
    steps: int = 8  # rollout steps T [paper]
    shift: float | None = None  # σ-schedule shift; None = the model's default
    anchors: int = 4  # B anchors per group (Eq. 9) [paper]
    trained_steps: int = 4  # K of the T steps trained per iteration [ours; implied by NFE_θ = 1.33]
    tau: float = 1.0  # softmax temperature of Eq. 8 [ours; the paper writes τ = 1]
    distance: Literal["mean", "sum"] = "mean"  # reduction of ‖x_i − x_anchor‖² [ours]
    clip_epsilon: float = 1e-4  # GRPO ratio clip [ours; DanceGRPO's value]
    inner_steps: int = 1  # optimizer steps per rollout batch [ours]
    quasi_norm_p: float = 0.8  # Eq. 11 [paper]
    rescale_sqrt_g: bool = True  # multiply Eq. 11 by √G so p = 2 equals standard GRPO [ours]
    # [ours, not in the paper] β of a pull toward the base model's velocity at every trained
    # anchor, β·mean‖v_θ − v_base‖²: the deterministic form of Flow-GRPO's KL penalty. 0 = off
    # (the paper). LoRA runs only: the base is the model with its adapter switched off.
    kl_beta: float = 0.0


@dataclass
class SdeSettings:
    """The DanceGRPO-style SDE baseline (PAPER.md §9)."""

    steps: int = 25
    # Fraction of the steps trained per sample, a fresh random subset per sample as DanceGRPO
    # permutes its timesteps (its timestep_fraction 0.6); NFE_θ = floor(steps × fraction).
    train_fraction: float = 0.6
    eta: float = 0.3
    noise_schedule: Literal["dance", "flow_grpo"] = "dance"
    flow_grpo_a: float = 0.7
    shift: float | None = None
    clip_epsilon: float = 1e-4
    advantage_clip: float = 5.0

    @property
    def trained_steps(self) -> int:
        return max(1, int(self.steps * self.train_fraction + 1e-9))


@dataclass
class LoraSettings:
    enabled: bool = True  # False = full fine-tuning of the transformer
    rank: int = 32  # [ours] PAPER.md §7
    alpha: float = 32.0  # α = r so ComfyUI's scale is right
    targets: list[str] | None = None  # None = the model's defaults
    export_dtype: Literal["fp16", "bf16", "fp32"] = "fp16"
    # Frozen base transformer quantized for small GPUs (FLUX.1-dev: 24 GB bf16 → ~12 GB int8);
    # the LoRA trains in fp32/bf16 on top. See docs/models.md for the backends.
    quantize_base: Literal["none", "int8", "nf4"] = "none"


@dataclass
class OptimizerSettings:
    learning_rate: float = 1e-3  # tiny model; PAPER.md uses 1e-5 on FLUX
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    warmup_iterations: int = 0
    micro_batch: int = 16  # anchors (or SDE samples) per forward/backward; gradients accumulate
    mixed_precision: Literal["no", "bf16"] = "no"  # bf16 base + autocast on every pass; trained weights fp32
    gradient_checkpointing: bool = False  # recompute transformer blocks in backward: less memory, ~30 % slower


@dataclass
class DistributedSettings:
    """Several processes (torchrun, accelerate launch); see docs/scaling.md."""

    # Full fine-tuning only: shard the transformer's weights, gradients and optimizer state over the
    # processes with torch's FSDP2 (fully_shard), for models whose training state does not fit on
    # one GPU. No effect on one process.
    fsdp: bool = False


@dataclass
class EvalSettings:
    every: int = 10  # iterations between evaluations (0 = only at the start and the end)
    prompts: str | list[str] = "shapes:test"
    seeds_per_prompt: int = 2
    max_prompts: int | None = None
    # One sampler for every evaluation whatever the run trains with, so runs of both algorithms
    # are judged on the same footing. None = the model's sampling defaults.
    solver: str | None = None
    steps: int | None = None
    # Also evaluate with the run's own rollout sampler (metrics under eval_rollout/).
    rollout_sampler: bool = False
    # Gold metrics: what the run is really for, and must not train on. Each must be independent
    # of every training reward (rewards/independence.py); the render match shares no logic with
    # the shapes checker behind shapes_fidelity.
    gold: list[RewardSpec] = field(
        default_factory=lambda: [RewardSpec("shapes_render_match"), RewardSpec("shapes_render_fit")]
    )
    # Reported beside gold and free of that rule (a training reward's hard version, say), never
    # used to stop the run.
    monitor: list[RewardSpec] = field(default_factory=list)
    gallery_size: int = 8  # images saved per evaluation
    # Evaluations in a row with gold falling while reward rises before the run stops itself;
    # None = 3 whenever a gold metric is configured, 0 = off.
    early_stop_patience: int | None = None
    early_stop_tolerance: float = 0.02

    @property
    def patience(self) -> int:
        if self.early_stop_patience is not None:
            return self.early_stop_patience
        return 3 if self.gold else 0


@dataclass
class TrainConfig:
    name: str = "run"
    # `tiny`, `tiny:PATH`, a diffusers folder, a single .safetensors file, or a mapping of parts
    # (transformer, clip_l, clip_g, t5, vae, t5_tokenizer); see docs/models.md.
    model: str | dict[str, str] = "tiny"
    guidance: float | None = None  # SD3 CFG scale / FLUX guidance embedding; None = the model's default
    algorithm: Literal["neighbor_grpo", "sde_grpo"] = "neighbor_grpo"
    prompts: str | list[str] = "shapes:train"
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec("shapes_fidelity")])
    # Each reward is z-scored within its group before weighting; its std there is floored at this
    # multiple of the batch's typical within-group std, so a nearly flat reward's noise stays small.
    # [ours] 0 = plain per-group z-scores.
    reward_std_floor: float = 0.0
    iterations: int = 100
    prompts_per_iteration: int = 4
    group_size: int = 12  # G [paper]
    seed: int = 0
    resolution: int | None = None
    checkpoint_every: int = 20
    keep_checkpoints: int = 3
    device: str = "auto"
    neighbor: NeighborSettings = field(default_factory=NeighborSettings)
    sde: SdeSettings = field(default_factory=SdeSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    distributed: DistributedSettings = field(default_factory=DistributedSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        config = _build(cls, data, "")
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def validate(self) -> None:
        problems = range_problems(self)
        if problems:
            raise ConfigError("; ".join(problems))
        # Single-field bounds live in RANGES (checked above); what follows relates fields or
        # checks what a range cannot (names, non-empty lists, combinations).
        _require(bool(self.rewards), "rewards", "needs at least one reward")
        _require(self.reward_std_floor >= 0, "reward_std_floor", "must be 0 (plain z-scores) or more")
        n = self.neighbor
        _require(n.solver in SOLVERS, "neighbor.solver", f"must be one of {', '.join(SOLVERS)}")
        _require(1 <= n.anchors <= self.group_size, "neighbor.anchors", f"must be in 1..group_size ({self.group_size})")
        _require(1 <= n.trained_steps <= n.steps, "neighbor.trained_steps", f"must be in 1..neighbor.steps ({n.steps})")
        _require(
            n.kl_beta == 0 or self.lora.enabled,
            "neighbor.kl_beta",
            "needs LoRA training (the base velocity is the model with its LoRA off); set it to 0 for full fine-tuning",
        )
        _require(
            not (self.distributed.fsdp and self.lora.enabled),
            "distributed.fsdp",
            "shards a full fine-tune; set lora.enabled: false to fine-tune fully, or distributed.fsdp: false "
            "to train the LoRA (its weights are small and every process keeps a copy)",
        )
        e = self.eval
        _require(e.solver is None or e.solver in SOLVERS, "eval.solver", f"must be one of {', '.join(SOLVERS)}")
        try:
            check_gold_independent(self.rewards, e.gold)
        except ValueError as error:
            raise ConfigError(str(error)) from None


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config; `overrides` maps dotted keys (e.g. 'neighbor.sigma_p') to values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}; see configs/ for examples")
    data = parse_yaml(_read_text(path), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    for dotted, value in (overrides or {}).items():
        apply_override(data, dotted, value)
    return TrainConfig.from_dict(data)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line} is not UTF-8 text; save the file as UTF-8") from None


def parse_yaml(text: str, where: str) -> Any:
    """YAML → Python, or a ConfigError that names `where`, the line and what the parser expected."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}; check quoting, colons and indentation") from None


def parse_override(pair: str) -> tuple[str, Any]:
    """`KEY=VALUE` from the command line (`--set`); VALUE is read as YAML (numbers, lists, true)."""
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key such as neighbor.sigma_p=0.3, got {pair!r}")
    return key, parse_yaml(value, f"--set {pair!r}")


def apply_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    target = data
    *parents, leaf = dotted.split(".")
    for depth, key in enumerate(parents):
        child = target.setdefault(key, {})
        if not isinstance(child, dict):
            inside = ".".join(parents[: depth + 1])
            raise ConfigError(
                f"--set {dotted}: {inside} is a single value ({child!r}), not a group of settings; "
                f"set {inside}=VALUE instead"
            )
        target = child
    target[leaf] = value


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{name} {message}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(prefix + u for u in unknown)}; allowed: {', '.join(sorted(known))}"
        )
    values = {name: _convert(hints[name], value, prefix + name) for name, value in data.items()}
    return cls(**values)


def _convert(hint: Any, value: Any, name: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is RewardSpec:  # before the dataclass branch: "name:weight" strings are allowed too
        try:
            return RewardSpec.from_dict(value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{name}: {error}") from None
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, name + ".")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, name)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[-1])
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"{name} must be a mapping of names to strings, got {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return [_convert(args[0], item, f"{name}[{i}]") for i, item in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{name} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, name) for a, v in zip(args, value, strict=True))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 3e-4 (no dot) as a string: accept it
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, RewardSpec):
        return value.to_dict()
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
