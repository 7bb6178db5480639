"""A test-only ComfyUI pack loaded beside ours: conditioning for an SD3 model without text encoders.

The LoRA check runs a tiny random SD3 transformer in a real ComfyUI; there are no text encoders
to make CONDITIONING, so this node builds the all-zero one of SD3's shapes (context [B, T, 4096],
pooled [B, 2048]) — the same conditioning the test trained its LoRA with.
"""

import torch
from comfy_api.latest import ComfyExtension, io


class ZeroSD3Conditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="NGRPOTest_ZeroSD3Conditioning",
            category="testing",
            inputs=[io.Int.Input("tokens", default=1, min=1, max=77, tooltip="context length")],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def execute(cls, tokens: int) -> io.NodeOutput:
        return io.NodeOutput([[torch.zeros(1, tokens, 4096), {"pooled_output": torch.zeros(1, 2048)}]])


class HelperExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [ZeroSD3Conditioning]


async def comfy_entrypoint() -> HelperExtension:
    return HelperExtension()
