"""Seeded pretraining of the embedded tiny model on the shapes world (`ngrpo pretrain-tiny`).

Rectified-flow matching: x_σ = (1 − σ)·x0 + σ·ε, regress v_θ(x_σ, σ, c) on ε − x0, with σ drawn
logit-normally as in SD3. The text encoder trains jointly. The saved weights are an exponential
moving average, which samples much better than the raw weights after a short run.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..world.shapes import ShapeSpec, render, train_prompts
from .base import Conditioning
from .tiny import TinyConfig, TinyFlowModel


@dataclass
class PretrainSettings:
    steps: int = 8000
    batch_size: int = 32
    learning_rate: float = 6e-4
    warmup_steps: int = 200
    ema_decay: float = 0.999
    images_per_prompt: int = 48  # pre-rendered jittered images per training prompt
    seed: int = 0


def _lr_factor(step: int, settings: PretrainSettings) -> float:
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def pretrain(settings: PretrainSettings, out: Path, progress: bool = True) -> TinyFlowModel:
    """Train from scratch and save the EMA weights to `out`; same settings, same weights."""
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    model = TinyFlowModel(TinyConfig()).train()
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, settings))

    prompts = train_prompts()
    pool_prompts = [p for p in prompts for _ in range(settings.images_per_prompt)]
    pool_seeds = [rng.randrange(2**31) for _ in pool_prompts]
    with torch.no_grad():
        pool_latents = model.encode_images(render([ShapeSpec.parse(p) for p in pool_prompts], pool_seeds))
    pool_ids = model.text_encoder.tokenize(pool_prompts)
    generator = torch.Generator().manual_seed(settings.seed)

    started = time.perf_counter()
    bar = tqdm(range(settings.steps), desc="pretrain", disable=not progress)
    for step in bar:
        index = torch.randint(len(pool_prompts), (settings.batch_size,), generator=generator)
        x0 = pool_latents[index]
        noise = torch.randn(x0.shape, generator=generator)
        sigma = torch.sigmoid(torch.randn(settings.batch_size, generator=generator))  # logit-normal
        s = sigma[:, None, None, None]
        x_sigma = (1.0 - s) * x0 + s * noise
        context, pooled = model.text_encoder(pool_ids[index])
        prediction = model.velocity(x_sigma, sigma, Conditioning(context, pooled))
        loss = torch.nn.functional.mse_loss(prediction, noise - x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            for target, source in zip(ema.parameters(), model.parameters(), strict=True):
                target.lerp_(source, 1.0 - settings.ema_decay)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")

    minutes = (time.perf_counter() - started) / 60.0
    ema.save(
        out,
        metadata={
            "ngrpo.pretrain.steps": str(settings.steps),
            "ngrpo.pretrain.seed": str(settings.seed),
            "ngrpo.pretrain.batch_size": str(settings.batch_size),
            "ngrpo.pretrain.minutes": f"{minutes:.1f}",
            "ngrpo.pretrain.threads": str(torch.get_num_threads()),
        },
    )
    return ema.eval()
