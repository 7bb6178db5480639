"""The extension ComfyUI loads: every node of the pack, and the JSON routes."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .export import ExportLora
from .images import CompareBaseVsAligned, ScoreImages
from .inputs import PromptSet, Reward, TrainingConfig
from .runs import LaunchTraining, RunStatus

NODES: list[type[io.ComfyNode]] = [
    PromptSet, Reward, TrainingConfig, LaunchTraining, RunStatus, CompareBaseVsAligned, ScoreImages, ExportLora,
]  # fmt: skip
_routes_added = False


def add_routes() -> None:
    # ComfyUI 0.3.75 never calls ComfyExtension.on_load: routes are added when the nodes are listed,
    # which happens once, before the server copies its route table into the app.
    global _routes_added
    if not _routes_added:
        from server import PromptServer

        from .routes import register

        register(PromptServer.instance.routes)
        _routes_added = True


class NeighborGRPOExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        add_routes()
        return NODES
