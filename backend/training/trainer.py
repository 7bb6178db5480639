"""The training loop shared by Neighbor GRPO and the SDE baseline: same prompts, rewards, optimizer,
LoRA, checkpoints and evaluation, so the two are compared on the same work."""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..algorithms.common import TrainStats
from ..algorithms.neighbor_grpo import NeighborGRPO
from ..algorithms.sde_grpo import SdeGRPO
from ..models.base import FlowModel
from ..models.registry import load_model
from ..prompts import resolve_prompts
from ..rewards import RewardSet
from . import checkpoint as ckpt
from .config import TrainConfig
from .distributed import RankReporter, Topology, group_generator
from .divergence import check_finite_update
from .evaluation import EarlyStop, Evaluator
from .fsdp import (
    gather_full_state,
    global_norm,
    load_for_sharding,
    load_full_state,
    refuse_accelerate_fsdp,
    shard_summary,
    shard_transformer,
)
from .lora import add_lora, export_lora, load_lora_state, lora_state
from .reporting import CheckpointRecord, Reporter

# Settings a resumed run must share with the run that wrote its checkpoint: a run whose algorithm,
# rewards or optimizer changed halfway is two experiments under one name. (The settings block of
# the algorithm that does not run is free; so are the micro-batch, which only bounds memory, and
# the iteration count, which is how a finished run is extended.)
_RESUME_INVARIANTS = (
    "model",
    "algorithm",
    "lora",
    "group_size",
    "prompts_per_iteration",
    "seed",
    "prompts",
    "rewards",
    "resolution",
)
_RESUME_FREE_OPTIMIZER = ("micro_batch",)


def changed_settings(saved: dict, current: dict) -> list[str]:
    """Names of the settings (dotted for nested ones) that differ and a resumed run must keep."""
    # Any reward setting, whatever it is called (rewards, reward_* options of the combination).
    keys = [*_RESUME_INVARIANTS, *sorted(k for k in set(saved) | set(current) if k.startswith("reward_"))]
    changed = [key for key in keys if saved.get(key) != current.get(key)]
    algorithm = "neighbor" if current.get("algorithm") == "neighbor_grpo" else "sde"
    for section, free in ((algorithm, ()), ("optimizer", _RESUME_FREE_OPTIMIZER)):
        before, after = saved.get(section) or {}, current.get(section) or {}
        changed += [
            f"{section}.{key}"
            for key in sorted(set(before) | set(after))
            if key not in free and before.get(key) != after.get(key)
        ]
    return changed


@dataclass
class TrainOutcome:
    status: str  # "finished" | "cancelled" | "interrupted"
    step: int
    reason: str = ""


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def reward_health(raw: dict[str, torch.Tensor], advantages: torch.Tensor) -> dict[str, float]:
    """Per reward: its mean within-group std and how the advantages [P, G] follow it (mean
    within-group Pearson correlation). A reward whose correlation stays near 0 is not being
    trained on whatever its weight says; the group std shows how much it varies there at all."""
    health = {}
    centred_adv = advantages - advantages.mean(-1, keepdim=True)
    for name, values in raw.items():
        groups = values.float().cpu().view_as(advantages)
        centred = groups - groups.mean(-1, keepdim=True)
        norms = centred.norm(dim=-1) * centred_adv.norm(dim=-1)
        corr = torch.where(norms > 0, (centred * centred_adv).sum(-1) / norms.clamp_min(1e-30), 0.0)
        health[f"group_std/{name}"] = groups.std(-1, unbiased=False).mean().item()
        health[f"advantage_corr/{name}"] = corr.mean().item()
    return health


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path, reporter: Reporter, device: str | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        # Under torchrun / accelerate launch: one process per GPU, only rank 0 reports.
        self.topology = Topology.from_env()
        self.reporter = RankReporter(reporter, self.topology) if self.topology.distributed else reporter
        self.device = self.topology.device(resolve_device(device or config.device))
        self.checkpoints = self.run_dir / "checkpoints"
        self.step = 0

    # -- setup -------------------------------------------------------------------------------
    def _setup(self) -> None:
        c = self.config
        refuse_accelerate_fsdp()  # before any model is loaded: its variables change how they load
        self.topology.start(self.device)
        self.shard = self.topology.shard(c.prompts_per_iteration)
        torch.manual_seed(c.seed)
        self.rng = ckpt.RngStates(python=random.Random(c.seed), generator=torch.Generator().manual_seed(c.seed))
        bf16 = c.optimizer.mixed_precision == "bf16"
        # bf16 keeps the frozen base in bf16. Trained weights stay fp32 (the LoRA, or the whole
        # transformer when fine-tuning fully): they are the master copy the optimizer steps, and
        # autocast casts them to bf16 per op. A bf16 weight would lose updates below its precision.
        dtype = torch.bfloat16 if bf16 and c.lora.enabled else None
        self.sharded = self._wants_sharding()
        # Eval mode throughout (nothing here uses dropout): kernels then match between a straight
        # run and a resumed one, which starts from a freshly loaded model.
        if self.sharded:
            self.model: FlowModel = load_for_sharding(c.model, self.device).eval()
        else:
            self.model = load_model(c.model, self.device, dtype, quantize=c.lora.quantize_base).eval()
        if c.guidance is not None:
            self.model.guidance = c.guidance
        if c.optimizer.gradient_checkpointing:
            self.model.transformer.enable_gradient_checkpointing()
        if c.lora.enabled:
            params = add_lora(self.model, c.lora)
        else:
            self.model.transformer.float().requires_grad_(True)
            if self.sharded:
                # Weights that agree on every rank (all read the same files, and host tensors
                # cannot go through NCCL). No reference to a whole parameter may be held here:
                # fully_shard moves each to the GPU whole before splitting it, and a kept one
                # would stay there.
                shard_transformer(self.model.transformer, self.device)
                print(shard_summary(self.model.transformer), flush=True)
            params = list(self.model.transformer.parameters())
        if not self.sharded:
            self.topology.broadcast_parameters(params)
        self.params = params
        o = c.optimizer
        self.optimizer = torch.optim.AdamW(params, lr=o.learning_rate, betas=o.betas, weight_decay=o.weight_decay)
        warmup = max(1, o.warmup_iterations)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda i: min(1.0, (i + 1) / warmup))
        self.prompts = resolve_prompts(c.prompts)
        self.rewards = RewardSet.from_specs(c.rewards, device=str(self.device))
        # TrainConfig.validate has refused gold metrics that depend on a training reward.
        self.gold = RewardSet.from_specs(c.eval.gold, device=str(self.device)) if c.eval.gold else None
        self.monitor = RewardSet.from_specs(c.eval.monitor, device=str(self.device)) if c.eval.monitor else None
        if c.algorithm == "neighbor_grpo":
            sigmas = self.model.sigmas(c.neighbor.steps, c.neighbor.shift, c.resolution)
            self.algorithm = NeighborGRPO(c.neighbor, c.group_size, sigmas=sigmas)
        else:
            sigmas = self.model.sigmas(c.sde.steps, c.sde.shift, c.resolution)
            self.algorithm = SdeGRPO(c.sde, c.group_size, sigmas=sigmas)
        # Every rank evaluates (a sharded model needs them all); only rank 0's gallery is kept.
        gallery = self.run_dir if self.topology.is_main else Path(tempfile.mkdtemp(prefix="ngrpo-rank-eval-"))
        self.evaluator = Evaluator(c, self.rewards, self.gold, gallery, self.monitor, self.algorithm)
        self.early_stop = EarlyStop(c.eval.patience, c.eval.early_stop_tolerance)

    def _wants_sharding(self) -> bool:
        """distributed.fsdp on several processes (config validation refused it with LoRA)."""
        if self.config.distributed.fsdp and not self.topology.distributed:
            print("distributed.fsdp has no effect on one process: training the full model unsharded")
        return self.config.distributed.fsdp and self.topology.distributed

    def _autocast(self):
        """bf16 autocast for every model pass, rollouts and trained passes alike (CPU included)."""
        if self.config.optimizer.mixed_precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- checkpoints -------------------------------------------------------------------------
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        if self.config.lora.enabled:
            return lora_state(self.model)
        return {k: v.detach() for k, v in self.model.transformer.state_dict().items()}

    def save(self) -> CheckpointRecord | None:
        if self.sharded:  # a collective: every rank hands in its shards, rank 0 receives the whole
            weights, optimizer_state = gather_full_state(self.model.transformer, self.optimizer)
        if not self.topology.is_main:  # rank 0 holds the whole state and writes it
            return None
        if not self.sharded:
            weights, optimizer_state = self._trainable_state(), self.optimizer.state_dict()
        c = self.config
        # Metrics reach the reporter before the checkpoint exists, so a crash between the two
        # cannot leave a checkpoint whose metrics were lost.
        self.reporter.flush()
        extra = {}
        if c.lora.enabled:
            info = {
                "name": c.name,
                "step": self.step,
                "seed": c.seed,
                "algorithm": c.algorithm,
                "model": c.model,
                "rewards": [r.to_dict() for r in c.rewards],
                "prompts": c.prompts if isinstance(c.prompts, str) else f"{len(c.prompts)} inline prompts",
                "resolution": c.resolution or self.model.defaults.resolution,
            }
            extra[ckpt.LORA] = lambda path: export_lora(self.model, c.lora, path, info)
        state = {"config": c.to_dict(), "early_stop": self.early_stop.state()}
        folder = ckpt.save_checkpoint(
            self.checkpoints, self.step, weights, optimizer_state, self.scheduler, self.rng, state, extra
        )
        ckpt.prune_checkpoints(self.checkpoints, c.keep_checkpoints)
        record = self._record(folder)
        self.reporter.checkpoint(record)
        self.reporter.flush()
        return record

    def _record(self, folder: Path) -> CheckpointRecord:
        lora = folder / ckpt.LORA
        return CheckpointRecord(
            step=self.step,
            folder=str(folder.relative_to(self.run_dir)),
            files=ckpt.file_hashes(folder),
            lora_path=str(lora.relative_to(self.run_dir)) if lora.is_file() else None,
        )

    def _resume(self, folder: Path) -> None:
        # Sharded, rank 0 alone reads the weights and optimizer state and sends the others theirs.
        reads = not self.sharded or self.topology.is_main
        weights, optimizer_state, state = ckpt.load_checkpoint(folder, self.scheduler, self.rng, tensors=reads)
        saved = state["config"]
        current = self.config.to_dict()
        changed = changed_settings(saved, current)
        if changed:
            raise ValueError(
                f"cannot resume from {folder}: the config changed {', '.join(changed)}; "
                "start a new run (or restore those settings) instead"
            )
        if self.sharded:
            load_full_state(self.model.transformer, self.optimizer, weights, optimizer_state)
        elif self.config.lora.enabled:
            self.optimizer.load_state_dict(optimizer_state)
            load_lora_state(self.model, weights)
        else:
            self.optimizer.load_state_dict(optimizer_state)
            self.model.transformer.load_state_dict(weights)
        self.early_stop.restore(state["early_stop"])
        self.step = state["step"]
        self.reporter.rewind(self.step)
        # Report it again: a crash between writing the folder and reporting it must not lose it.
        self.reporter.checkpoint(self._record(folder))

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> TrainOutcome:
        self._setup()
        # Rank 0 alone verifies (hashing a full fine-tune's checkpoint is slow, and moving a
        # damaged one aside must happen once) and tells the others which one to resume from.
        latest = ckpt.latest_intact_checkpoint(self.checkpoints) if self.topology.is_main else None
        latest = self.topology.broadcast(latest)
        if latest is not None:
            self._resume(latest)
        else:
            self.reporter.rewind(0)  # a crash before the first checkpoint left rows a rerun rewrites
            self.reporter.metrics(0, self._evaluate(0))
        total = self.config.iterations
        try:
            while self.step < total:
                flags = self.reporter.poll()
                if flags.cancel or flags.stop:
                    self.save()
                    return TrainOutcome("cancelled" if flags.cancel else "interrupted", self.step)
                metrics = self.iteration()
                self.step += 1
                if self._due(self.config.eval.every) or flags.sample_now:
                    evaluation = self._evaluate(self.step)
                    metrics.update(evaluation)
                    if self.early_stop.update(self.step, evaluation["eval/reward"], evaluation["eval/gold"]):
                        self.reporter.metrics(self.step, metrics)
                        self.save()
                        return TrainOutcome("finished", self.step, "early stop: gold metric fell while reward rose")
                self.reporter.metrics(self.step, metrics)
                self.reporter.progress(self.step, total)
                if self._due(self.config.checkpoint_every) or flags.save_now:
                    self.save()
        finally:
            self.reporter.flush()
            self.topology.stop()
        return TrainOutcome("finished", self.step)

    def _due(self, every: int) -> bool:
        return self.step == self.config.iterations or (every > 0 and self.step % every == 0)

    def _evaluate(self, step: int) -> dict[str, float]:
        # Rank 0's numbers on every rank, so early stopping decides the same everywhere.
        with self._autocast():
            return self.topology.broadcast(self.evaluator.evaluate(self.model, step, self.reporter))

    def iteration(self) -> dict[str, float]:
        """One GRPO iteration: rollouts, rewards, advantages, optimizer step(s)."""
        c, g = self.config, self.config.group_size
        started = self._clock()
        # Every rank draws the whole batch from the shared stream and keeps its shard of groups;
        # each group's noise comes from its own stream (see distributed.py).
        batch = self._draw_prompts()[self.shard.start : self.shard.stop]
        generators = [group_generator(c.seed, self.step, group) for group in self.shard]
        with torch.no_grad():
            cond = self.model.encode_prompts(batch)
        shape = self.model.noise_shape(1, c.resolution)
        base = torch.cat([torch.randn(shape, generator=generator) for generator in generators])
        rollout = self.algorithm.rollout(self.model, cond, base, generators, self._autocast)
        with torch.no_grad():
            images = self.model.decode(rollout.latents)
        rolled = self._clock()
        group_prompts = [p for p in batch for _ in range(g)]
        raw = self.rewards.score(images, group_prompts)
        combined = self.rewards.combine(raw, g, c.reward_std_floor).to(self.device)
        advantages = self.algorithm.advantages(combined)
        scored = self._clock()
        self.algorithm.plan(rollout, self.rng.python, self.shard, c.prompts_per_iteration)
        inner = self.algorithm.inner_steps
        stats, grad_norms = TrainStats(), []
        for _ in range(inner):
            self.optimizer.zero_grad(set_to_none=True)
            stats.merge(
                self.algorithm.accumulate_gradients(
                    self.model, rollout, advantages, c.optimizer.micro_batch, self._autocast
                )
            )
            if not self.sharded:  # FSDP's backward has averaged them already (reduce-scatter)
                self.topology.average_gradients(self.params)
            grad_norms.append(global_norm(torch.nn.utils.clip_grad_norm_(self.params, c.optimizer.grad_clip)))
            # The statistics averaged over ranks (a NaN anywhere stays a NaN), so every rank
            # stops together instead of one waiting forever for the others' next collective.
            check_finite_update(self.step + 1, grad_norms[-1], self.topology.average_metrics(stats.values))
            self.optimizer.step()
        self.scheduler.step()
        trained = self._clock()
        # Every inner step's statistics count: means over them (the per-step values are already
        # means over that step's passes), and the largest gradient norm beside the mean.
        values = {name: value / inner for name, value in stats.values.items()}
        values["grad_norm_max"] = max(grad_norms)
        metrics = self._iteration_metrics(raw, values, sum(grad_norms) / inner, started, rolled, scored, trained)
        metrics.update(reward_health(raw, advantages.detach().cpu().view(-1, g)))
        return self.topology.average_metrics(metrics)

    def _clock(self) -> float:
        """perf_counter once the GPU has finished its queued work (CUDA runs asynchronously, so an
        unsynchronised clock times the launch, not the work)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _draw_prompts(self) -> list[str]:
        count = self.config.prompts_per_iteration
        if count <= len(self.prompts):
            return self.rng.python.sample(self.prompts, count)
        return [self.rng.python.choice(self.prompts) for _ in range(count)]

    def _iteration_metrics(self, raw, stats, grad_norm, started, rolled, scored, trained) -> dict[str, float]:
        g = self.config.group_size
        metrics = {f"reward/{name}": values.float().mean().item() for name, values in raw.items()}
        metrics["reward"] = sum(
            spec.weight * raw[name].float().mean().item()
            for name, spec in zip(self.rewards.names, self.rewards.specs, strict=True)
        )
        spreads = torch.stack([values.float().view(-1, g).std(-1, unbiased=False) for values in raw.values()])
        metrics["flat_group_fraction"] = (spreads.max(0).values < 1e-6).float().mean().item()
        metrics["group_reward_std"] = spreads[0].mean().item()
        metrics.update({k: v for k, v in stats.items() if k != "passes"})
        metrics.update(
            grad_norm=grad_norm,
            lr=self.scheduler.get_last_lr()[0],
            s_per_iter=trained - started,
            rollout_s=rolled - started,
            reward_s=scored - rolled,
            train_s=trained - scored,
            nfe_old=self.algorithm.nfe_old,
            nfe_theta=self.algorithm.nfe_theta,
        )
        return metrics
