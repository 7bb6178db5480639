"""Handing a checkpoint's LoRA out: to a file or folder, or into a ComfyUI `models/loras` folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...storage import history, runs
from .errors import ActionError, action

Home = str | os.PathLike | None
RunRef = int | str


@dataclass(frozen=True)
class ExportRequest:
    run: RunRef
    step: int | None = None  # default: the newest checkpoint with a LoRA
    out: Path | None = None  # a file or a folder; default: NAME-stepS.safetensors in the current folder
    comfy_folder: Path | None = None  # a ComfyUI install, its models/ or its models/loras folder


@dataclass(frozen=True)
class ExportResult:
    path: Path
    step: int
    sha256: str | None


def comfy_loras_folder(folder: str | os.PathLike) -> Path:
    """The `models/loras` folder of a ComfyUI install given as its root, its models/ or that folder."""
    folder = Path(folder).expanduser()
    for candidate in (folder / "models" / "loras", folder / "loras", folder):
        if candidate.name == "loras" and candidate.is_dir():
            return candidate
    raise ActionError(
        f"no ComfyUI loras folder at {folder}; give the ComfyUI folder (the one holding models/loras) "
        "or the models/loras folder itself"
    )


@dataclass(frozen=True)
class LoraFile:
    """A checkpoint's LoRA as it sits in the run folder (a download needs no copy)."""

    step: int
    path: Path
    sha256: str | None


@action
def list_loras(home: Home, run: RunRef) -> list[LoraFile]:
    """The run's checkpoints that carry a LoRA, oldest first."""
    return [
        LoraFile(c.step, c.lora_path, c.sha256) for c in history.list_checkpoints(home, run) if c.lora_path is not None
    ]


@action
def export_lora(home: Home, request: ExportRequest) -> ExportResult:
    """Copy a checkpoint's LoRA, checked against the hash recorded when it was saved."""
    if request.out is not None and request.comfy_folder is not None:
        raise ActionError("give either an output path or a ComfyUI folder, not both")
    out = comfy_loras_folder(request.comfy_folder) if request.comfy_folder is not None else request.out
    path = runs.export_lora(home, request.run, step=request.step, out=out)
    loras = {lora.step: lora for lora in list_loras(home, request.run)}
    step = request.step if request.step is not None else max(loras)
    return ExportResult(path, step, loras[step].sha256)
