"""Run detail: live curves (every reward, the gold metric, loss, clip fraction, flat-group
fraction, s/iter), evaluation images with each prompt's group side by side, config and error.

While the run is live a timer ticks; each tick sends only what moved since the page last looked
(see `update`), and the gallery follows the newest step until the person picks another."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import gradio as gr
import pandas as pd

from ..backend import actions
from .common import POLL_S, Context, duration, escape, file_url, shown

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


def frames(curves: dict[str, list[tuple[int, float]]]) -> list[pd.DataFrame | None]:
    """One frame per plot; None for a plot with nothing to draw yet. Never an empty frame: the
    browser's plot builds its chart (axis types, the colours of its metrics) from the first data
    it is given and afterwards only swaps the rows, so a chart first built on an empty frame (a run
    that has logged nothing yet) would stay broken. With None it builds the chart on real rows."""
    out = []
    for wanted in PLOTS.values():
        rows = [
            (step, value, name) for name, points in curves.items() if matches(name, wanted) for step, value in points
        ]
        out.append(pd.DataFrame(rows, columns=["step", "value", "metric"]) if rows else None)
    return out


def plot_updates(new: list[pd.DataFrame | None], drawn: tuple) -> tuple[list, tuple, bool]:
    """(updates, the metric names each plot shows afterwards, whether a plot needs a redraw).
    The browser's chart fixes its metrics (colours) when it is built and afterwards only swaps
    rows, so a metric new to a drawn chart would stay undrawn: such a plot is emptied now (None)
    and gets its rows on the next tick, when the browser builds it again."""
    names = tuple(() if frame is None else tuple(sorted(set(frame["metric"]))) for frame in new)
    stale = [bool(drawn[i]) and names[i] != drawn[i] for i in range(len(new))]
    updates = [None if stale[i] else frame for i, frame in enumerate(new)]
    return updates, tuple(() if stale[i] else names[i] for i in range(len(new))), any(stale)


def header(info, detail) -> str:
    progress = f"{info.progress_step}/{info.progress_total}" if info.progress_total else str(info.progress_step)
    parts = [f"### {info.id} · {escape(info.name)} — {info.status}", f"step {progress}"]
    metrics = detail.latest_metrics
    for key, label in (("eval/reward", "held-out reward"), ("eval/gold", "gold"), ("s_per_iter", "s/iter")):
        if key in metrics:
            parts.append(f"{label} {metrics[key][1]:.4f} (step {metrics[key][0]})")
    if detail.eta_s is not None:
        parts.append(f"ETA {duration(detail.eta_s)}")
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


def update(home, run_id, step=None, follow=True, seen=None, full=True) -> tuple:
    """Updates for OUTPUTS (in order) showing run `run_id`; `seen` is what the page already shows
    ({"run": id, "pulse": RunPulse, "names": metric names per plot, "redraw": bool}, a gr.State). With `full` (opening a run, Refresh)
    everything is sent; on a timer tick (`full=False`) only the parts whose pulse moved, and
    gr.skip() for the rest: an unchanged tick costs one cheap pulse read. The gallery follows the
    newest evaluation step only while `follow` is on (a person who picked an older step keeps it);
    opening another run turns following back on."""
    if run_id is None:
        return ("No runs yet: launch one in the New run tab.", gr.Textbox(visible=False), *frames({}),
                gr.Dropdown(choices=[], value=None), True, "", "", gr.Timer(active=False), None)  # fmt: skip
    pulse = actions.run_pulse(home, run_id)
    new_run = not seen or seen["run"] != pulse.id
    before = None if new_run else seen["pulse"]
    if not (full or new_run) and pulse == before:
        return (gr.skip(),) * len(OUTPUTS)
    fresh = full or new_run

    def moved(*parts: str) -> bool:
        return fresh or any(getattr(before, part) != getattr(pulse, part) for part in parts)

    detail = actions.show_run(home, pulse.id)  # the header: status, progress, latest metrics, ETA
    info = detail.info
    error = gr.skip()
    if moved("status", "error"):
        text = actions.run_error(home, pulse.id) if info.status in ("failed", "interrupted") else None
        error = gr.Textbox(value=text or "", visible=bool(text))
    plots, names, redraw = [gr.skip()] * len(PLOTS), None if new_run else seen.get("names"), False
    if moved("metrics"):
        # A new run's plots were emptied before this (run.change), so its charts start fresh.
        drawn = ((),) * len(PLOTS) if new_run or names is None else names
        plots, names, redraw = plot_updates(frames(actions.run_curves(home, pulse.id, max_points=MAX_POINTS)), drawn)
    if redraw:  # resend the curves next tick, and make sure there is one (even if the run just ended)
        pulse_seen, timer = replace(pulse, metrics=(-1, None)), gr.Timer(active=True)
    else:
        pulse_seen = pulse
        timer = gr.Timer(active=pulse.active) if moved("status") or (seen or {}).get("redraw") else gr.skip()
    steps, gallery = gr.skip(), gr.skip()
    following = True if new_run else follow
    if moved("samples"):
        images = None
        if not following and step is not None:
            try:
                images = actions.run_gallery(home, pulse.id, step)
            except actions.ActionError:  # the picked step is gone (the run rewound past it)
                following = True
        if images is None:
            images = actions.run_gallery(home, pulse.id)
        if following or full:
            steps, gallery = gr.Dropdown(choices=images.steps, value=images.step), gallery_html(images)
        else:  # new steps to pick from; the step this person picked stays on screen
            steps = gr.Dropdown(choices=images.steps)
    return (
        header(info, detail), error, *plots, steps, True if following != follow or new_run else gr.skip(), gallery,
        json.dumps(info.config, indent=2) if fresh else gr.skip(),
        timer, {"run": pulse.id, "pulse": pulse_seen, "names": names, "redraw": redraw},
    )  # fmt: skip


def pick_step(home, run_id, picked) -> tuple[str, bool]:
    """A person picked an evaluation step: its gallery, and whether to keep following (only when
    the pick is the newest step, which is what following would show anyway)."""
    images = actions.run_gallery(home, run_id, picked)
    return gallery_html(images), bool(images.steps) and images.step == images.steps[-1]


def follow_newest(home, run_id, following) -> tuple:
    """The follow box was ticked again: jump to the newest step (unticked: leave the gallery)."""
    if not following or run_id is None:
        return gr.skip(), gr.skip()
    images = actions.run_gallery(home, run_id)
    return gr.Dropdown(choices=images.steps, value=images.step), gallery_html(images)


# What `update` returns, in order (build() wires the components in this order).
OUTPUTS = ("head", "error", *(f"plot{i}" for i in range(len(PLOTS))), "step", "follow", "gallery", "config", "timer",
           "seen")  # fmt: skip


def build(ctx: Context) -> dict[str, Any]:
    timer = gr.Timer(POLL_S, active=False)
    seen = gr.State(None)  # what this page shows (see `update`), so ticks send only news
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
        follow = gr.Checkbox(
            True, label="Follow the newest step", elem_id="detail.follow", scale=1,
            info="While the run is live, show each new evaluation step; picking an older step turns this off.",
        )  # fmt: skip
        gr.Markdown(
            "Each row is one held-out prompt on different seeds: collapsed diversity or reward hacking shows at a glance."
        )
    gallery = gr.HTML(elem_id="detail.gallery")
    with gr.Accordion("Config", open=False):
        config = gr.Code(language="json", elem_id="detail.config")

    @shown
    def show(run_id, picked=None, following=True, shown_before=None):
        return update(ctx.home, run_id, picked, following, shown_before, full=True)

    @shown
    def detail_tick(run_id, picked, following, shown_before):
        return update(ctx.home, run_id, picked, following, shown_before, full=False)

    @shown
    def pick(run_id, picked):
        return pick_step(ctx.home, run_id, picked)

    @shown
    def refollow(run_id, following):
        return follow_newest(ctx.home, run_id, following)

    outputs = [head, error, *plots, step, follow, gallery, config, timer, seen]
    inputs = [run, step, follow, seen]
    read = {"concurrency_limit": None, "show_progress": "hidden"}
    # Another run: empty the plots first, so the browser builds new charts for its metrics (a chart
    # only swaps rows on an update, and a metric it was not built with would stay undrawn).
    run.change(lambda: (None,) * len(plots), None, plots, queue=False, **read).then(show, inputs, outputs, **read)
    refresh.click(show, inputs, outputs, **read)
    # Ticks skip the queue: the browser sends one plain POST instead of joining the queue and
    # holding an event stream open, which is most of an unchanged tick's cost.
    timer.tick(detail_tick, inputs, outputs, queue=False, **read)
    step.input(pick, [run, step], [gallery, follow], **read)
    follow.input(refollow, [run, follow], [step, gallery], **read)

    return {"run": run, "show": show, "tick": detail_tick, "outputs": outputs}
