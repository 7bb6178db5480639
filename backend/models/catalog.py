"""The real models a user already has: SD3/FLUX files in ComfyUI's model folders (and
extra_model_paths.yaml), each with the parts found beside it and the parts still missing."""

from __future__ import annotations

from . import comfyui, sources
from .registry import ModelInfo
from .weights_files import ModelError


def describe(spec: str, folders: comfyui.ModelFolders | None = None) -> ModelInfo:
    """One model's entry; raises ModelError when the file is not an SD3/FLUX model at all."""
    source = sources.resolve(spec, folders)
    parts = {role: str(part.path) for role, part in source.parts.items()}
    if source.missing:
        available, detail = False, sources.missing_message(source)
    else:
        try:
            sources.check_parts(source)
            available, detail = True, "found: " + ", ".join(sorted(parts))
        except ModelError as error:
            available, detail = False, str(error)
    path = source.transformer.path
    name = path.parent.name if path.name == "transformer" else path.name
    return ModelInfo(spec, name, source.architecture.label, available, detail, source.family, parts, source.missing)


def real_models(folders: comfyui.ModelFolders | None = None) -> list[ModelInfo]:
    """Every SD3/FLUX file in ComfyUI's diffusion_models/ and checkpoints/ folders (other
    architectures, SDXL say, are skipped: this project does not train them)."""
    folders = folders or comfyui.discover()
    infos = []
    for kind in ("diffusion_models", "checkpoints"):
        for path in folders.files(kind):
            try:
                infos.append(describe(str(path), folders))
            except ModelError:
                continue
    return infos
