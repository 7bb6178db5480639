"""Where a real model's parts are: a `model:` value (a diffusers folder, one .safetensors file, or
a mapping of parts) resolved to files, with the family detected and every missing part named —
all from file headers, before any weight is read, so a run is refused before it is queued."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import comfyui
from .architectures import Architecture, detect_text_encoder, detect_transformer, detect_vae
from .weights_files import TEXT_ENCODER_PREFIXES, TRANSFORMER_PREFIX, VAE_PREFIXES, ModelError, read_header

PART_KEYS = ("transformer", "clip_l", "clip_g", "t5", "vae", "t5_tokenizer")
# Text encoders each family needs, and the file names ComfyUI users keep them under.
FAMILY_ENCODERS = {"sd3": ("clip_l", "clip_g", "t5"), "flux": ("clip_l", "t5")}
_NAME_HINTS = {"clip_l": ("clip_l",), "clip_g": ("clip_g",), "t5": ("t5xxl", "t5_xxl", "t5-xxl", "t5")}
_VAE_HINTS = {"flux": ("ae.safetensors", "flux"), "sd3": ("sd3", "sd35", "sd3.5")}
# Subfolders of a diffusers folder per part and family.
_DIFFUSERS = {
    "sd3": {
        "clip_l": "text_encoder",
        "clip_g": "text_encoder_2",
        "t5": "text_encoder_3",
        "t5_tokenizer": "tokenizer_3",
    },
    "flux": {"clip_l": "text_encoder", "t5": "text_encoder_2", "t5_tokenizer": "tokenizer_2"},
}


@dataclass(frozen=True)
class Part:
    """One component: a file (with the key prefix of its tensors), or a diffusers subfolder."""

    path: Path
    prefix: str = ""

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()


@dataclass
class ModelSource:
    spec: str | dict
    architecture: Architecture
    transformer: Part
    parts: dict[str, Part] = field(default_factory=dict)  # clip_l, clip_g, t5, vae, t5_tokenizer
    clip_tokenizers: dict[str, Path] = field(default_factory=dict)  # diffusers folders ship them

    @property
    def family(self) -> str:
        return self.architecture.family

    @property
    def missing(self) -> list[str]:
        needed = [*FAMILY_ENCODERS[self.family], "vae"]
        if "t5" in self.parts:
            needed.append("t5_tokenizer")
        return [name for name in needed if name not in self.parts]

    def require_complete(self) -> None:
        if self.missing:
            raise ModelError(missing_message(self))


def missing_message(source: ModelSource) -> str:
    names = {"clip_l": "CLIP-L (clip_l.safetensors)", "clip_g": "CLIP-G (clip_g.safetensors)",
             "t5": "T5-XXL (t5xxl_fp16.safetensors)", "vae": "the VAE",
             "t5_tokenizer": "the T5 tokenizer (spiece.model or tokenizer.json)"}  # fmt: skip
    wanted = ", ".join(names[m] for m in source.missing)
    return (
        f"{source.architecture.label} at {source.transformer.path}: missing {wanted}. Put them in "
        "ComfyUI's models/text_encoders and models/vae folders beside it, or name them: model: "
        "{transformer: ..., clip_l: ..., t5: ..., vae: ..., t5_tokenizer: FOLDER} (docs/models.md). "
        "ComfyUI installs carry the T5 tokenizer under comfy/text_encoders/t5_tokenizer"
    )


def resolve(spec: str | dict, folders: comfyui.ModelFolders | None = None) -> ModelSource:
    """The parts of a real model; missing parts are left out (see `ModelSource.missing`)."""
    if isinstance(spec, dict):
        return _from_mapping(spec, folders)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(
                f"{path} is a folder without model_index.json: point at a diffusers model folder, or at "
                "the .safetensors file itself"
            )
        return _from_diffusers(path)
    return _from_file(spec, path, folders)


def _from_diffusers(folder: Path) -> ModelSource:
    index = json.loads((folder / "model_index.json").read_text())
    transformer = folder / "transformer"
    files = sorted(transformer.glob("*.safetensors"))
    if not files:
        raise ModelError(f"{transformer}: no .safetensors weights (pickled .bin weights are not loaded)")
    shapes = {}
    for file in files:
        shapes.update(read_header(file).shapes)
    architecture = detect_transformer(shapes, str(transformer))
    expected = {"sd3": "StableDiffusion3Pipeline", "flux": "FluxPipeline"}[architecture.family]
    if index.get("_class_name", expected) != expected:
        raise ModelError(f"{folder}: model_index.json names {index.get('_class_name')}, expected {expected}")
    source = ModelSource(str(folder), architecture, Part(transformer))
    for name, sub in _DIFFUSERS[architecture.family].items():
        if (folder / sub).is_dir():
            source.parts[name] = Part(folder / sub)
    if (folder / "vae").is_dir():
        source.parts["vae"] = Part(folder / "vae")
    for role, sub in (("clip_l", "tokenizer"), ("clip_g", "tokenizer_2")):
        if (folder / sub).is_dir() and (architecture.family == "sd3" or role == "clip_l"):
            source.clip_tokenizers[role] = folder / sub
    return source


def _from_file(spec: str, path: Path, folders: comfyui.ModelFolders | None) -> ModelSource:
    header = read_header(path)
    prefix = TRANSFORMER_PREFIX if header.has_prefix(TRANSFORMER_PREFIX) else ""
    architecture = detect_transformer(header.part(prefix), str(path))
    source = ModelSource(spec, architecture, Part(path, prefix))
    if prefix:  # an all-in-one checkpoint: take the parts it carries
        for role, part_prefix in TEXT_ENCODER_PREFIXES.items():
            if role in FAMILY_ENCODERS[architecture.family] and header.has_prefix(part_prefix):
                source.parts[role] = Part(path, part_prefix)
        for vae_prefix in VAE_PREFIXES:
            if header.has_prefix(vae_prefix + "decoder."):
                source.parts["vae"] = Part(path, vae_prefix)
                break
    _fill_from_folders(source, [comfyui.folders_near(path), folders or comfyui.discover()])
    return source


def _from_mapping(spec: dict, folders: comfyui.ModelFolders | None) -> ModelSource:
    unknown = sorted(set(spec) - set(PART_KEYS))
    if unknown or "transformer" not in spec:
        raise ModelError(
            f"model mapping: {'unknown key(s) ' + ', '.join(unknown) if unknown else 'no transformer'}; "
            f"use the keys {', '.join(PART_KEYS)} (transformer is required)"
        )
    source = resolve(str(spec["transformer"]), folders)
    source.spec = dict(spec)
    for name in PART_KEYS[1:]:
        if name in spec:
            path = Path(spec[name]).expanduser()
            if not path.exists():
                raise ModelError(f"model mapping: {name} not found at {path}")
            source.parts[name] = Part(path)
    return source


def _fill_from_folders(source: ModelSource, searches: list[comfyui.ModelFolders]) -> None:
    """Text encoders, VAE and T5 tokenizer by ComfyUI's file names, nearest folders first."""
    for folders in searches:
        encoders = folders.files("text_encoders")  # one folder scan for all the roles
        for role in FAMILY_ENCODERS[source.family]:
            if role not in source.parts:
                match = _by_name(encoders, _NAME_HINTS[role])
                if match is not None:
                    source.parts[role] = Part(match)
        if "vae" not in source.parts:
            match = _by_name(folders.files("vae"), _VAE_HINTS[source.family])
            if match is not None:
                source.parts["vae"] = Part(match)
        tokenizers = folders.t5_tokenizers() if "t5_tokenizer" not in source.parts else []
        if tokenizers:
            source.parts["t5_tokenizer"] = Part(tokenizers[0])
    t5 = source.parts.get("t5")
    if "t5_tokenizer" not in source.parts and t5 is not None and not t5.is_folder:
        for candidate in (t5.path.parent / "t5_tokenizer", t5.path.parent / "tokenizer"):
            if candidate.is_dir():
                source.parts["t5_tokenizer"] = Part(candidate)


def _by_name(files: list[Path], hints: tuple[str, ...]) -> Path | None:
    """The first file whose name contains a hint (earlier hints win; fp16 before fp8)."""
    for hint in hints:
        matches = [f for f in files if hint in f.name.lower()]
        if matches:
            return sorted(matches, key=lambda f: ("fp8" in f.name.lower(), f.name))[0]
    return None


def check_parts(source: ModelSource) -> None:
    """Read every part's header and refuse wrong files (a T5 given as clip_l, an SD1.5 VAE ...)."""
    source.require_complete()
    for role in FAMILY_ENCODERS[source.family]:
        part = source.parts[role]
        if not part.is_folder:
            detect_text_encoder(read_header(part.path).part(part.prefix), role, str(part.path))
    vae = source.parts["vae"]
    if not vae.is_folder:
        detect_vae(read_header(vae.path).part(vae.prefix), source.family, str(vae.path))
    tokenizer = source.parts.get("t5_tokenizer")
    if tokenizer is not None and not any(
        (tokenizer.path / name).is_file() for name in ("spiece.model", "tokenizer.json")
    ):
        raise ModelError(f"{tokenizer.path}: no spiece.model or tokenizer.json, so it is not a T5 tokenizer folder")
