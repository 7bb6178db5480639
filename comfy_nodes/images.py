"""Compare Base vs Aligned, and Score Images: images in ComfyUI's IMAGE form ([B, H, W, C] floats
in 0..1) going through the same actions as the CLI and the dashboard."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from comfy_api.latest import io, ui
from PIL import Image

from ..backend import actions
from ..backend.actions.prompts import resolve_prompt_source
from ..backend.actions.scoring import load_image
from ..backend.rewards.spec import RewardSpec
from . import requests
from .common import CATEGORY, PROMPTS, REWARDS, node_id, validation
from .runs import free_comfyui_memory


def load_images(paths: list[Path]) -> torch.Tensor:
    """Image files → ComfyUI's IMAGE batch [B, H, W, C] (scoring's loader gives [C, H, W])."""
    return torch.stack([load_image(path).permute(1, 2, 0) for path in paths])


def save_images(images: torch.Tensor, folder: Path) -> list[Path]:
    paths = []
    for index, image in enumerate(images):
        path = folder / f"{index:04d}.png"
        Image.fromarray((image[..., :3].clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def score_table(rows: list[tuple[str, dict[str, float], float]]) -> str:
    """One JSON object per line: what an image is, its scores and its weighted total."""
    return "\n".join(
        json.dumps({"image": label, **{k: round(v, 5) for k, v in scores.items()}, "total": round(total, 5)})
        for label, scores, total in rows
    )


class CompareBaseVsAligned(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("CompareBaseVsAligned"),
            display_name="Compare Base vs Aligned",
            category=CATEGORY,
            description="The base model and the run's newest LoRA on the same prompts and seeds, with the run's "
            "deterministic ODE solver, side by side (base left), and every image's reward scores.",
            inputs=[
                io.Int.Input("run_id", default=1, min=1, max=2**31 - 1, tooltip="the run whose newest LoRA to compare"),
                io.String.Input("seeds", default="0, 1", tooltip="initial-noise seeds, the same for both models"),
                io.Int.Input("steps", default=0, min=0, max=200, tooltip="solver steps (0: the run's rollout steps)"),
                PROMPTS.Input(
                    "prompts", optional=True, tooltip="prompts to compare on (default: 4 of the run's held-out ones)"
                ),
                REWARDS.Input(
                    "rewards", optional=True, tooltip="rewards to score with (default: the run's, and its gold metric)"
                ),
            ],
            outputs=[
                io.Image.Output(display_name="side_by_side"),
                io.Image.Output(display_name="base"),
                io.Image.Output(display_name="aligned"),
                io.String.Output(display_name="scores"),
            ],
        )

    @classmethod
    def validate_inputs(cls, seeds: str | None = None) -> bool | str:
        return True if seeds is None else validation(requests.parse_seeds, seeds)

    @classmethod
    def execute(cls, run_id: int, seeds: str, steps: int, prompts=None, rewards=None) -> io.NodeOutput:
        request = actions.CompareRequest(
            run=run_id,
            prompts=resolve_prompt_source(None, prompts) if prompts is not None else [],
            seeds=requests.parse_seeds(seeds),
            steps=steps or None,
            rewards=[RewardSpec.from_dict(r) for r in rewards or []],
        )
        free_comfyui_memory()
        result = actions.compare(None, request)
        base, aligned = result.columns[0], result.columns[-1]
        if aligned is base:
            raise actions.ActionError(f"run {run_id} has no LoRA checkpoint yet; queue again once Run Status shows one")
        base_images = load_images([image.path for image in base.images])
        aligned_images = load_images([image.path for image in aligned.images])
        rows = [
            (f"{column.label} | seed {image.seed} | {image.prompt}", image.scores, image.total)
            for column in (base, aligned)
            for image in column.images
        ]
        means = ", ".join(f"{k} {base.means[k]:.3f} → {aligned.means[k]:.3f}" for k in base.means)
        text = f"{base.label} vs {aligned.label} ({result.solver}, {result.steps} steps): {means}"
        side_by_side = torch.cat([base_images, aligned_images], dim=2)
        return io.NodeOutput(side_by_side, base_images, aligned_images, score_table(rows), ui=ui.PreviewText(text))


class ScoreImages(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("ScoreImages"),
            display_name="Score Images",
            category=CATEGORY,
            description="Reward scores of any IMAGE batch, each reward alone and as the weighted total.",
            inputs=[
                io.Image.Input("images", tooltip="the images to score"),
                REWARDS.Input("rewards", tooltip="one or more chained Reward nodes"),
                io.String.Input(
                    "prompts",
                    multiline=True,
                    default="",
                    tooltip="the prompt the images answer (one line for all, or one line per image); "
                    "prompt-free rewards ignore it",
                ),
            ],
            outputs=[io.String.Output(display_name="scores"), io.Float.Output(display_name="mean_total")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images: torch.Tensor, rewards: list[dict], prompts: str) -> io.NodeOutput:
        lines = [line.strip() for line in prompts.splitlines() if line.strip()] or [""]
        with tempfile.TemporaryDirectory(prefix="ngrpo-score-") as folder:
            paths = save_images(images, Path(folder))
            result = actions.score_images(
                actions.ScoreRequest(paths, lines, [RewardSpec.from_dict(r) for r in rewards])
            )
        rows = [(f"{i} | {score.prompt}", score.scores, score.total) for i, score in enumerate(result.images)]
        mean = sum(score.total for score in result.images) / len(result.images)
        table = score_table(rows)
        return io.NodeOutput(table, mean, ui=ui.PreviewText(f"mean total {mean:.4f}\n{table}"))
