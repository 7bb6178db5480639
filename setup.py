"""Which folders the wheel holds, found automatically (the rest of the metadata is in pyproject.toml).

The repository root is the package `neighbor_grpo` (it is also a ComfyUI custom-node pack), so
every folder below it is a subpackage: code (backend, storage, ui, comfy_nodes, … including ones
added later, with or without `__init__.py`) and data the code reads at run time (weights/tiny,
configs, web assets). Data folders are found as namespace packages so that the package-data
globs in pyproject.toml reach into them; setuptools alone skips non-package folders.
"""

from setuptools import find_namespace_packages, setup

# Development-only folders and build leftovers; hidden ones (.venv, .git, .ci) are never
# candidates because their names are not Python identifiers.
NOT_SHIPPED = ("tests", "bench", "docs", "build", "dist", "out", "runs")

excluded = [pattern for name in NOT_SHIPPED for pattern in (name, f"{name}.*")] + ["*__pycache__*"]
subpackages = find_namespace_packages(where=".", exclude=excluded)

setup(
    package_dir={"neighbor_grpo": "."},
    packages=["neighbor_grpo", *(f"neighbor_grpo.{name}" for name in subpackages)],
)
