"""Runs: the registry as a table (status, progress, ETA, best reward, gold), live while anything
runs, with cancel, resume, delete (confirmed) and open."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ..backend import actions
from .common import POLL_S, Context, duration, escape, shown, when

COLUMNS = [
    "ID",
    "Name",
    "Status",
    "Progress",
    "ETA",
    "Best eval reward",
    "Gold",
    "Model",
    "Algorithm",
    "Created",
    "Note",
]


def fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


LIMIT = 200  # the newest runs the table lists


def table(home) -> pd.DataFrame:
    rows = [
        [
            row.id, row.name, row.status, f"{row.step}/{row.total}" if row.total else str(row.step),
            duration(row.eta_s), fmt(row.best_reward), fmt(row.gold), row.model, row.algorithm,
            when(row.created_at), row.note,
        ]
        for row in actions.list_runs(home, limit=LIMIT)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def reload(home, before=None) -> tuple:
    """(table, live note, timer, pulse): everything, or with `before` (the pulse of what the page
    shows) gr.skip() for all of it when no listed run moved, so an idle tick costs one cheap read."""
    pulse = actions.runs_pulse(home, limit=LIMIT)  # read first: the rows below are never older
    if before is not None and pulse == before:
        return (gr.skip(),) * 4
    note = f"⟳ live: refreshing every {POLL_S:g} s while a run is queued or running" if pulse.active else ""
    return table(home), note, gr.Timer(active=pulse.active), pulse


def build(ctx: Context) -> dict[str, Any]:
    timer = gr.Timer(POLL_S, active=actions.any_active(ctx.home))
    with gr.Row():
        refresh = gr.Button("Refresh", size="sm", elem_id="runs.refresh", scale=0, min_width=100)
        live = gr.Markdown(elem_id="runs.live")
    runs_table = gr.Dataframe(
        table(ctx.home), headers=COLUMNS, interactive=False, elem_id="runs.table", wrap=True,
        max_height=420, column_widths=["4%", "15%", "8%", "7%", "6%", "8%", "7%", "9%", "12%", "11%", "13%"],
    )  # fmt: skip
    selected = gr.State(None)
    with gr.Row():
        picked = gr.Markdown("Click a row to select a run.", elem_id="runs.selected")
    with gr.Row():
        open_button = gr.Button("Open", elem_id="runs.open", size="sm")
        cancel = gr.Button("Cancel", elem_id="runs.cancel", size="sm")
        resume = gr.Button("Resume", elem_id="runs.resume", size="sm")
        delete = gr.Button("Delete…", elem_id="runs.delete", variant="stop", size="sm")
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Yes, delete it and its files", variant="stop", elem_id="runs.confirm_delete", size="sm")
        keep = gr.Button("Keep it", elem_id="runs.keep", size="sm")
    message = gr.Markdown(elem_id="runs.message")

    @shown
    def refreshed():
        return reload(ctx.home)

    @shown
    def runs_tick(before):
        return reload(ctx.home, before)

    def select(data: pd.DataFrame, event: gr.SelectData):
        run_id = int(event.row_value[0])
        return run_id, f"Selected run **{run_id} · {escape(event.row_value[1])}** ({event.row_value[2]})"

    def need(run_id: int | None) -> int:
        if run_id is None:
            raise actions.ActionError("select a run first: click its row in the table")
        return run_id

    @shown
    def do_cancel(run_id):
        info = actions.cancel_run(ctx.home, need(run_id))
        return f"Run {info.id}: " + (
            "cancel requested; it stops after its next checkpoint" if info.status == "running" else info.status
        )

    @shown
    def do_resume(run_id):
        info, _ = actions.resume_run(ctx.home, need(run_id))
        return f"Run {info.id} queued again; it continues from its last checkpoint"

    @shown
    def ask_delete(run_id):
        info = actions.get_run(ctx.home, need(run_id))
        if info.status == "running":
            raise actions.ActionError(f"run {info.name!r} is running; cancel it first")
        return gr.Row(
            visible=True
        ), f"Delete run **{info.id} · {escape(info.name)}** and its folder `{escape(info.folder)}`?"

    @shown
    def do_delete(run_id):
        info = actions.delete_run(ctx.home, need(run_id))
        return gr.Row(visible=False), f"Deleted run {info.id} ({escape(info.name)})", None

    seen = gr.State(None)  # the RunsPulse of the rows on screen: a tick reloads only when it moved
    outputs = [runs_table, live, timer, seen]
    read = {"concurrency_limit": None, "show_progress": "hidden"}
    timer.tick(runs_tick, seen, outputs, queue=False, **read)  # a plain POST per tick (see run_detail.py)
    refresh.click(refreshed, None, outputs, **read)
    runs_table.select(select, runs_table, [selected, picked], **read)
    for button, handler in ((cancel, do_cancel), (resume, do_resume)):
        button.click(handler, selected, message, api_visibility="private").then(refreshed, None, outputs, **read)
    delete.click(ask_delete, selected, [confirm_row, confirm_text], api_visibility="private")
    keep.click(lambda: gr.Row(visible=False), None, confirm_row, api_visibility="private")
    confirm.click(do_delete, selected, [confirm_row, message, selected], api_visibility="private").then(
        refreshed, None, outputs, **read
    )
    return {"refresh": refreshed, "outputs": outputs, "selected": selected, "open": open_button, "timer": timer}
