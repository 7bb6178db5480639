"""Run detail: live curves (every reward, the gold metric, loss, clip fraction, flat-group
fraction, s/iter), evaluation images with each prompt's group side by side, config and error."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr
import pandas as pd

from ..backend import actions
from .common import POLL_S, Context, duration, escape, file_url, run_picker_update, shown

# Plot title → which metrics it shows (a prefix ending in "/" takes every metric under it).
PLOTS = {
    "Training reward": ("reward", "reward/"),
    "Held-out reward, gold and monitor metrics": ("eval/",),
    "Loss": ("loss",),
    "Clip fraction and flat-group fraction": ("clip_fraction", "flat_group_fraction"),
    "Seconds per iteration": ("s_per_iter", "rollout_s", "train_s", "reward_s"),
}
MAX_POINTS = 300


def matches(name: str, wanted: tuple[str, ...]) -> bool:
    return any(name.startswith(w) if w.endswith("/") else name == w for w in wanted)


def frames(curves: dict[str, list[tuple[int, float]]]) -> list[pd.DataFrame]:
    out = []
    for wanted in PLOTS.values():
        rows = [
            (step, value, name) for name, points in curves.items() if matches(name, wanted) for step, value in points
        ]
        out.append(pd.DataFrame(rows, columns=["step", "value", "metric"]))
    return out


def header(info, detail) -> str:
    progress = f"{info.progress_step}/{info.progress_total}" if info.progress_total else str(info.progress_step)
    parts = [f"### {info.id} · {escape(info.name)} — {info.status}", f"step {progress}"]
    metrics = detail.latest_metrics
    for key, label in (("eval/reward", "held-out reward"), ("eval/gold", "gold"), ("s_per_iter", "s/iter")):
        if key in metrics:
            parts.append(f"{label} {metrics[key][1]:.4f} (step {metrics[key][0]})")
    if info.status == "running" and info.started_at and info.progress_step:
        import time

        per = (time.time() - info.started_at) / info.progress_step
        parts.append(f"ETA {duration(per * (info.progress_total - info.progress_step))}")
    parts.append(f"model `{escape(info.model)}`, {escape(info.algorithm)}; folder `{escape(info.folder)}`")
    return parts[0] + "\n\n" + " · ".join(parts[1:])


def gallery_html(gallery: actions.Gallery) -> str:
    if gallery.step is None:
        return "<p class='ngrpo-empty'>No evaluation images yet: the first appear once the run evaluates.</p>"
    rows = []
    for group in gallery.groups:
        cells = "".join(
            f"<figure><img src='{file_url(image.path)}' alt='seed {image.seed}'>"
            f"<figcaption>seed {image.seed}<br>"
            + "<br>".join(f"{escape(k)} {v:.3f}" for k, v in image.scores.items())
            + "</figcaption></figure>"
            for image in group.images
        )
        rows.append(f"<div class='ngrpo-group'><div class='ngrpo-prompt'>{escape(group.prompt)}</div>{cells}</div>")
    return f"<div class='ngrpo-gallery' data-step='{gallery.step}'>{''.join(rows)}</div>"


def build(ctx: Context) -> dict[str, Any]:
    timer = gr.Timer(POLL_S, active=False)
    with gr.Row():
        run = gr.Dropdown(label="Run", elem_id="detail.run", allow_custom_value=True, scale=4)
        refresh = gr.Button("Refresh", size="sm", elem_id="detail.refresh", scale=0, min_width=100)
    head = gr.Markdown(elem_id="detail.header")
    error = gr.Textbox(label="Error", visible=False, lines=8, elem_id="detail.error", buttons=["copy"])
    plots = []
    titles = list(PLOTS)
    for row in (titles[:3], titles[3:]):
        with gr.Row():
            for title in row:
                plots.append(
                    gr.LinePlot(
                        x="step", y="value", color="metric", title=title, height=260,
                        elem_id=f"detail.plot{titles.index(title)}",
                    )
                )  # fmt: skip
    with gr.Row():
        step = gr.Dropdown(label="Evaluation step", elem_id="detail.step", scale=1)
        gr.Markdown(
            "Each row is one held-out prompt on different seeds: collapsed diversity or reward hacking shows at a glance."
        )
    gallery = gr.HTML(elem_id="detail.gallery")
    with gr.Accordion("Config", open=False):
        config = gr.Code(language="json", elem_id="detail.config")

    @shown
    def show(run_id, wanted_step=None):
        if run_id is None:
            empty = [pd.DataFrame(columns=["step", "value", "metric"])] * len(plots)
            return ("No runs yet: launch one in the New run tab.", gr.Textbox(visible=False), *empty,
                    gr.Dropdown(choices=[], value=None), "", "", gr.Timer(active=False))  # fmt: skip
        detail = actions.show_run(ctx.home, run_id)
        info = detail.info
        curves = actions.run_curves(ctx.home, run_id, max_points=MAX_POINTS)
        images = actions.run_gallery(ctx.home, run_id, wanted_step if wanted_step is not None else None)
        text = actions.run_error(ctx.home, run_id) if info.status in ("failed", "interrupted") else None
        steps = gr.Dropdown(choices=images.steps, value=images.step)
        return (
            header(info, detail), gr.Textbox(value=text or "", visible=bool(text)), *frames(curves), steps,
            gallery_html(images), json.dumps(info.config, indent=2), gr.Timer(active=info.status in ("queued", "running")),
        )  # fmt: skip

    outputs = [head, error, *plots, step, gallery, config, timer]
    read = {"concurrency_limit": None, "show_progress": "hidden"}
    run.change(show, run, outputs, **read)
    refresh.click(show, run, outputs, **read)
    timer.tick(show, run, outputs, **read)  # live runs follow their newest evaluation step
    step.input(
        shown(lambda run_id, s: gallery_html(actions.run_gallery(ctx.home, run_id, s))), [run, step], gallery, **read
    )

    def picker(wanted=None):
        return run_picker_update(ctx.home, wanted)

    return {"run": run, "picker": picker, "show": show, "outputs": outputs}
