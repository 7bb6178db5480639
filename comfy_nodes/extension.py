"""The extension ComfyUI loads: every node of the pack, and the JSON routes."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io


class NeighborGRPOExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return []
