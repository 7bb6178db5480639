"""Held-out evaluation with fixed seeds: every training reward plus "gold" metrics the run does not
train on, so reward hacking shows as the training reward rising while gold falls."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..models.base import FlowModel
from ..prompts import resolve_prompts
from ..rewards import RewardSet
from ..sampling import generate, to_pil
from .config import TrainConfig
from .reporting import Reporter, SampleRecord

EVAL_SEED_BASE = 1_000_000  # fixed, independent of the run's seed, so runs compare on the same noise
_BATCH = 32


@dataclass
class EarlyStop:
    """Stops when gold falls by more than `tolerance` below its best for `patience` evaluations in a
    row while the training reward stays at or above its value at that best."""

    patience: int
    tolerance: float
    best_gold: float | None = None
    reward_at_best: float | None = None
    strikes: int = 0
    history: list[tuple[int, float, float]] = field(default_factory=list)

    def update(self, step: int, reward: float, gold: float) -> bool:
        self.history.append((step, reward, gold))
        if self.best_gold is None or gold >= self.best_gold:
            self.best_gold, self.reward_at_best, self.strikes = gold, reward, 0
            return False
        hacking = gold < self.best_gold - self.tolerance and reward >= self.reward_at_best
        self.strikes = self.strikes + 1 if hacking else 0
        return self.patience > 0 and self.strikes >= self.patience

    def state(self) -> dict:
        return {
            "best_gold": self.best_gold,
            "reward_at_best": self.reward_at_best,
            "strikes": self.strikes,
            "history": self.history,
        }

    def restore(self, state: dict) -> None:
        self.best_gold, self.reward_at_best = state["best_gold"], state["reward_at_best"]
        self.strikes, self.history = state["strikes"], [tuple(h) for h in state["history"]]


class Evaluator:
    """Samples the fixed held-out prompts and seeds with the evaluation sampler (`eval.solver`,
    `eval.steps`: one for every run, whatever it trains with) and scores them with the training
    rewards, the gold metrics and the monitors; optionally again with the run's rollout sampler."""

    def __init__(
        self,
        config: TrainConfig,
        train_rewards: RewardSet,
        gold: RewardSet | None,
        run_dir: Path,
        monitor: RewardSet | None = None,
        algorithm=None,
    ):
        prompts = resolve_prompts(config.eval.prompts)[: config.eval.max_prompts]
        count = config.eval.seeds_per_prompt
        self.prompts = [p for p in prompts for _ in range(count)]
        self.seeds = [EVAL_SEED_BASE + index for index in range(len(self.prompts))]
        self.config = config
        self.train_rewards = train_rewards
        self.gold = gold
        self.monitor = monitor
        self.algorithm = algorithm
        self.run_dir = run_dir

    @torch.no_grad()
    def evaluate(self, model: FlowModel, step: int, reporter: Reporter) -> dict[str, float]:
        e = self.config.eval
        images = self._sample(
            lambda prompts, seeds: generate(
                model, prompts, seeds, solver=e.solver, steps=e.steps, resolution=self.config.resolution
            )
        )
        scores = self._score(images)
        metrics = self._summarise(scores, "eval")
        reporter.samples(step, self._save_gallery(images, scores, step))
        if e.rollout_sampler:
            metrics.update(self.evaluate_rollout_sampler(model))
        return metrics

    @torch.no_grad()
    def evaluate_rollout_sampler(self, model: FlowModel) -> dict[str, float]:
        """The same prompts and noise through the run's own rollout sampler (an SDE draws its step
        noise from a generator seeded the same way every time) → eval_rollout/* metrics."""
        if self.algorithm is None:
            raise ValueError("evaluating on the rollout sampler needs the run's algorithm")

        def sample(prompts: list[str], seeds: list[int]) -> torch.Tensor:
            generator = torch.Generator().manual_seed(seeds[0])
            noise = model.initial_noise(seeds, self.config.resolution)
            cond = model.encode_prompts(prompts)
            return model.decode(self.algorithm.sample(model, cond, noise, generator))

        return self._summarise(self._score(self._sample(sample)), "eval_rollout")

    def _sample(self, sample_batch) -> torch.Tensor:
        return torch.cat(
            [
                sample_batch(self.prompts[i : i + _BATCH], self.seeds[i : i + _BATCH])
                for i in range(0, len(self.prompts), _BATCH)
            ]
        )

    def _score(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        scores = self.train_rewards.score(images, self.prompts)
        for extra in (self.monitor, self.gold):
            if extra is not None:
                scores.update(extra.score(images, self.prompts))
        return scores

    def _summarise(self, scores: dict[str, torch.Tensor], prefix: str) -> dict[str, float]:
        metrics = {f"{prefix}/{name}": values.float().mean().item() for name, values in scores.items()}
        metrics[f"{prefix}/reward"] = sum(
            spec.weight * scores[name].float().mean().item()
            for name, spec in zip(self.train_rewards.names, self.train_rewards.specs, strict=True)
        )
        gold_names = self.gold.names if self.gold is not None else self.train_rewards.names
        metrics[f"{prefix}/gold"] = sum(scores[name].float().mean().item() for name in gold_names) / len(gold_names)
        return metrics

    def _save_gallery(self, images: torch.Tensor, scores: dict[str, torch.Tensor], step: int) -> list[SampleRecord]:
        folder = self.run_dir / "samples" / f"step-{step:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for index in range(min(self.config.eval.gallery_size, len(self.prompts))):
            path = folder / f"{index:03d}.png"
            to_pil(images[index]).save(path)
            records.append(
                SampleRecord(
                    prompt=self.prompts[index],
                    seed=self.seeds[index],
                    path=str(path.relative_to(self.run_dir)),
                    scores={name: values[index].item() for name, values in scores.items()},
                )
            )
        return records
