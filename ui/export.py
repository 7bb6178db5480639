"""Export: download a checkpoint's LoRA (served from the run folder, not copied), or copy it into
a ComfyUI `models/loras` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..backend import actions
from .common import Context, escape, shown


def build(ctx: Context) -> dict[str, Any]:
    gr.Markdown(
        "Every checkpoint carries a LoRA that ComfyUI's LoraLoader and diffusers' `load_lora_weights` both load "
        "at the trained strength."
    )
    with gr.Row():
        run = gr.Dropdown(label="Run", elem_id="export.run", allow_custom_value=True, scale=3)
        step = gr.Dropdown(label="Checkpoint step", elem_id="export.step", scale=1)
    download = gr.DownloadButton("Download LoRA", elem_id="export.download", interactive=False)
    with gr.Row():
        comfy = gr.Textbox(
            label="ComfyUI folder (or its models/loras)", placeholder="/home/me/ComfyUI", elem_id="export.comfy",
            scale=4,
        )  # fmt: skip
        copy = gr.Button("Copy into ComfyUI", elem_id="export.copy", scale=1)
    message = gr.Markdown(elem_id="export.message")

    def loras(run_id):
        return {lora.step: lora for lora in actions.list_loras(ctx.home, run_id)} if run_id is not None else {}

    @shown
    def choose_run(run_id):
        found = loras(run_id)
        if not found:
            note = "This run has no checkpoint with a LoRA yet." if run_id is not None else ""
            return gr.Dropdown(choices=[], value=None), gr.DownloadButton(value=None, interactive=False), note
        newest = max(found)
        return gr.Dropdown(choices=sorted(found), value=newest), download_for(run_id, newest), ""

    def download_for(run_id, chosen):
        found = loras(run_id)
        if chosen not in found:
            return gr.DownloadButton(value=None, interactive=False)
        path = found[chosen].path
        return gr.DownloadButton(
            f"Download LoRA (step {chosen}, {path.stat().st_size // 1024} KiB)", value=str(path), interactive=True
        )

    @shown
    def copy_into(run_id, chosen, folder):
        if run_id is None or chosen is None:
            raise actions.ActionError("pick a run and a checkpoint first")
        if not (folder or "").strip():
            raise actions.ActionError("type the ComfyUI folder (the one holding models/loras)")
        result = actions.export_lora(
            ctx.home, actions.ExportRequest(run_id, int(chosen), comfy_folder=Path(folder.strip()))
        )
        return f"✅ Copied to `{escape(result.path)}` (sha256 checked). In ComfyUI: LoraLoader → `{escape(result.path.name)}`."

    read = {"concurrency_limit": None, "show_progress": "hidden"}
    run.change(choose_run, run, [step, download, message], **read)
    step.input(shown(download_for), [run, step], download, **read)
    copy.click(copy_into, [run, step, comfy], message, api_visibility="private")

    return {"run": run}
