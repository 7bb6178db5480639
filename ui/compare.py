"""Compare: the base model vs one or more checkpoints, on the same prompts and initial noise, with
the solver and step count the user picks: a grid with every image's scores and each column's
mean, and a slider for one pair. See backend/actions/comparing.py for how a compare keeps off a
training run's GPU memory."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..backend import actions
from ..backend.solvers import SOLVERS
from .common import Context, escape, file_url, shown


def grid_html(result: actions.CompareResult) -> str:
    head = "".join(
        f"<th>{escape(c.label)}<div class='ngrpo-mean'>"
        + " · ".join(f"{escape(k)} {v:.3f}" for k, v in c.means.items())
        + "</div></th>"
        for c in result.columns
    )
    rows = []
    for index, first in enumerate(result.columns[0].images):
        cells = "".join(
            f"<td><img src='{file_url(column.images[index].path)}' alt='{escape(column.label)}'>"
            f"<div class='ngrpo-score'>total {column.images[index].total:.3f}<br>"
            + "<br>".join(f"{escape(k)} {v:.3f}" for k, v in column.images[index].scores.items())
            + "</div></td>"
            for column in result.columns
        )
        rows.append(f"<tr><th class='ngrpo-rowhead'>{escape(first.prompt)}<br>seed {first.seed}</th>{cells}</tr>")
    caption = f"{len(result.prompts)} prompt(s) × {len(result.seeds)} seed(s), {escape(result.solver)}, {result.steps} steps; column means in the header"
    return f"<table class='ngrpo-compare'><caption>{caption}</caption><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in (text or "").replace(",", " ").split()]
    except ValueError:
        raise actions.ActionError(f"seeds must be whole numbers separated by commas, got {text!r}") from None
    if not seeds:
        raise actions.ActionError("give at least one seed, e.g. 0, 1")
    return seeds


def build(ctx: Context) -> dict[str, Any]:
    gr.Markdown(
        "Base model vs checkpoints on **the same prompts and the same initial noise**. On a GPU a compare is "
        "refused while a run trains on that device, so the two never compete for its memory."
    )
    with gr.Row():
        run = gr.Dropdown(label="Run", elem_id="compare.run", allow_custom_value=True, scale=3)
        checkpoints = gr.CheckboxGroup(label="Checkpoints (LoRA steps)", elem_id="compare.checkpoints", scale=3)
    with gr.Row():
        prompts = gr.Textbox(
            label="Prompts, one per line (empty: the first 4 held-out prompts of the run)", lines=3,
            elem_id="compare.prompts", scale=4,
        )  # fmt: skip
        with gr.Column(scale=2):
            seeds = gr.Textbox("0, 1", label="Seeds", elem_id="compare.seeds", info="the same noise in every column")
            with gr.Row():
                solver = gr.Dropdown(list(SOLVERS), value="dpmpp2m", label="Solver", elem_id="compare.solver")
                steps = gr.Number(8, label="Steps", precision=0, minimum=1, maximum=200, elem_id="compare.steps")
    go = gr.Button("Compare", variant="primary", elem_id="compare.go")
    grid = gr.HTML(elem_id="compare.grid")
    slider = gr.ImageSlider(label="First image: base ↔ last checkpoint", elem_id="compare.slider", max_height=384)

    @shown
    def choose_run(run_id):
        if run_id is None:
            return gr.CheckboxGroup(choices=[], value=[]), gr.skip(), gr.skip()
        loras = [lora.step for lora in actions.list_loras(ctx.home, run_id)]
        config = actions.run_config(ctx.home, run_id)
        return (
            gr.CheckboxGroup(choices=loras, value=loras[-1:]),
            config["neighbor"]["solver"],
            config["neighbor"]["steps"],
        )

    @shown
    def run_compare(run_id, chosen, prompt_text, seed_text, solver_name, step_count, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        if run_id is None:
            raise actions.ActionError("pick a run first")
        request = actions.CompareRequest(
            run=run_id, checkpoints=sorted(int(s) for s in chosen or []),
            prompts=[line for line in (prompt_text or "").splitlines() if line.strip()], seeds=parse_seeds(seed_text),
            solver=solver_name, steps=int(step_count) if step_count else None,
        )  # fmt: skip
        result = actions.compare(ctx.home, request, progress=lambda fraction, message: progress(fraction, desc=message))
        pair = (str(result.columns[0].images[0].path), str(result.columns[-1].images[0].path))
        return grid_html(result), pair

    run.change(choose_run, run, [checkpoints, solver, steps], concurrency_limit=None, show_progress="hidden")
    go.click(run_compare, [run, checkpoints, prompts, seeds, solver, steps], [grid, slider], api_visibility="private")

    return {"run": run}
