"""The ComfyUI nodes: thin V3 nodes over the actions layer (`backend/actions`). Imported only by
the pack's `comfy_entrypoint`, inside ComfyUI."""
