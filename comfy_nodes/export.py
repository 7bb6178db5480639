"""Export LoRA: a run's checkpoint LoRA into ComfyUI's `loras` folder, in our own subfolder, where
the stock LoraLoader lists it for the user's own graphs."""

from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io, ui

from ..backend import actions
from .common import CATEGORY, node_id

SUBFOLDER = "neighbor-grpo"


def loras_subfolder() -> Path:
    import folder_paths

    folder = Path(folder_paths.get_folder_paths("loras")[0]) / SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class ExportLora(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("ExportLora"),
            display_name="Export LoRA to ComfyUI",
            category=CATEGORY,
            description=f"Copy a run's LoRA into ComfyUI's loras/{SUBFOLDER}/ folder (checked against its recorded "
            "hash); the stock LoraLoader then lists it (refresh the page to see it).",
            inputs=[
                io.Int.Input("run_id", default=1, min=1, max=2**31 - 1, tooltip="the run whose LoRA to export"),
                io.Int.Input("step", default=0, min=0, max=2**31 - 1, tooltip="checkpoint step (0: the newest)"),
            ],
            outputs=[io.String.Output(display_name="lora_name")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, run_id: int, step: int) -> io.NodeOutput:
        result = actions.export_lora(None, actions.ExportRequest(run=run_id, step=step or None, out=loras_subfolder()))
        name = f"{SUBFOLDER}/{result.path.name}"
        return io.NodeOutput(name, ui=ui.PreviewText(f"LoraLoader lists it as {name} (step {result.step})"))
