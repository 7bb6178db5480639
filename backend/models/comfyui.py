"""ComfyUI's model folders: where a ComfyUI install keeps diffusion models, checkpoints, text
encoders and VAEs (its own `models/` tree plus every `extra_model_paths.yaml` section), so users
point at files they already have instead of copying them."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# ComfyUI's folder names for each kind of file (the first is current, the rest legacy names).
KINDS = {
    "diffusion_models": ("diffusion_models", "unet"),
    "checkpoints": ("checkpoints",),
    "text_encoders": ("text_encoders", "clip"),
    "vae": ("vae",),
}
T5_TOKENIZER = Path("comfy") / "text_encoders" / "t5_tokenizer"


@dataclass
class ModelFolders:
    """Folders to search per kind, and ComfyUI install roots (for the bundled T5 tokenizer)."""

    folders: dict[str, list[Path]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    roots: list[Path] = field(default_factory=list)
    # files() per kind, listed once: one ModelFolders serves one catalog listing or one resolve,
    # where every model file would otherwise re-glob the same text_encoders/ and vae/ folders.
    _listed: dict[str, list[Path]] = field(default_factory=dict, repr=False, compare=False)

    def add_models_dir(self, models: Path) -> None:
        for kind, names in KINDS.items():
            for name in names:
                self._add(kind, models / name)

    def _add(self, kind: str, folder: Path) -> None:
        folder = folder.expanduser()
        if folder.is_dir() and folder not in self.folders[kind]:
            self.folders[kind].append(folder)
            self._listed.pop(kind, None)

    def add_root(self, root: Path) -> None:
        root = root.expanduser()
        if root.is_dir() and root not in self.roots:
            self.roots.append(root)
            self.add_models_dir(root / "models")
            if (root / "extra_model_paths.yaml").is_file():
                self.add_extra_paths(root / "extra_model_paths.yaml")

    def add_extra_paths(self, config: Path) -> None:
        """ComfyUI's extra_model_paths.yaml: sections of `base_path` plus per-kind relative paths
        (one per line in a multi-line value)."""
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        for section in data.values():
            if not isinstance(section, dict):
                continue
            base = Path(str(section.get("base_path", config.parent))).expanduser()
            if not base.is_absolute():
                base = config.parent / base
            for key, value in section.items():
                kind = next((k for k, names in KINDS.items() if key in names), None)
                if kind is None or not isinstance(value, str):
                    continue
                for line in value.splitlines():
                    if line.strip():
                        self._add(kind, base / line.strip())

    def files(self, kind: str) -> list[Path]:
        """Every .safetensors file of a kind, searched one level of subfolders deep."""
        if kind not in self._listed:
            found: list[Path] = []
            for folder in self.folders[kind]:
                for path in sorted([*folder.glob("*.safetensors"), *folder.glob("*/*.safetensors")]):
                    if path not in found:
                        found.append(path)
            self._listed[kind] = found
        return list(self._listed[kind])

    def t5_tokenizers(self) -> list[Path]:
        return [root / T5_TOKENIZER for root in self.roots if (root / T5_TOKENIZER).is_dir()]


def add_running_comfyui(found: ModelFolders) -> None:
    """Inside a running ComfyUI its own `folder_paths` knows every model folder (--base-directory,
    extra_model_paths.yaml, a pack folder that is a link): ask it first. Only a ComfyUI process has
    imported it; importing it here could pick up an unrelated module of that name."""
    folder_paths = sys.modules.get("folder_paths")
    if folder_paths is None or not hasattr(folder_paths, "get_folder_paths"):
        return
    for kind, names in KINDS.items():
        for folder in folder_paths.get_folder_paths(names[0]):
            found._add(kind, Path(folder))
    found.add_root(Path(folder_paths.__file__).resolve().parent)


def discover(extra_roots: list[Path] | None = None) -> ModelFolders:
    """ComfyUI installs from $COMFYUI_PATH (os.pathsep-separated), the install this pack sits in
    (custom_nodes/<pack>), and ~/ComfyUI; plus $COMFYUI_EXTRA_MODEL_PATHS yaml files."""
    found = ModelFolders()
    add_running_comfyui(found)
    candidates = [Path(p) for p in os.environ.get("COMFYUI_PATH", "").split(os.pathsep) if p]
    candidates += list(extra_roots or [])
    if REPO_ROOT.parent.name == "custom_nodes":
        candidates.append(REPO_ROOT.parent.parent)
    candidates.append(Path.home() / "ComfyUI")
    for root in candidates:
        found.add_root(root)
    for config in (Path(p) for p in os.environ.get("COMFYUI_EXTRA_MODEL_PATHS", "").split(os.pathsep) if p):
        if config.is_file():
            found.add_extra_paths(config)
    return found


def folders_near(path: Path) -> ModelFolders:
    """The ComfyUI layout a file sits in: for models/diffusion_models/x.safetensors, the sibling
    text_encoders/, clip/ and vae/ folders, and the install root above `models/`."""
    found = ModelFolders()
    for parent in path.resolve().parents:
        if any((parent / name).is_dir() for names in KINDS.values() for name in names):
            found.add_models_dir(parent)
            if parent.name == "models":
                found.add_root(parent.parent)
            break
    return found
