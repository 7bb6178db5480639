"""neighbor-grpo: align flow-matching text-to-image models with Neighbor GRPO.

The repository root is this package (`neighbor_grpo` when installed) and, at the same time, a
ComfyUI custom-node pack: keep this module free of heavy imports. ComfyUI imports the folder as a
package named after its path and awaits `comfy_entrypoint`; only then are the nodes (and ComfyUI's
own `comfy_api`) imported, so `import neighbor_grpo` elsewhere never needs ComfyUI.
"""

__version__ = "0.1.0"
# ComfyUI serves every .js in this folder to its page (entry scripts only).
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    """ComfyUI's V3 entry point: the extension that lists this pack's nodes."""
    from .comfy_nodes.extension import NeighborGRPOExtension

    return NeighborGRPOExtension()
