"""neighbor-grpo: align flow-matching text-to-image models with Neighbor GRPO.

The repository root is this package (`neighbor_grpo` when installed) and, at the same time, a
ComfyUI custom-node pack: keep this module free of heavy imports.
"""

__version__ = "0.1.0"
