"""Rewards on open_clip models, loaded only from files the user chose: CLIP score, HPSv2/v2.1 (a
fine-tuned open_clip ViT-H-14, scored the same way) and the LAION aesthetic predictor (an MLP
head over CLIP ViT-L/14 image embeddings).

Models are built with `pretrained=None` (random weights, no hub lookup) and then filled from the
user's file; open_clip is imported only when such a reward is built.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import Reward
from .options import Options
from .registry import RewardEntry, register_reward
from .weights import WeightsLookup, fingerprint, load_into, load_state_dict

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_FOLDER_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.safetensors")
_CLIP_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def clip_pixels(
    images: torch.Tensor, size: int | tuple[int, int], mean, std, resize_mode: str = "shortest"
) -> torch.Tensor:
    """CLIP's eval transform on tensors: bicubic resize (shortest side), centre crop, normalise."""
    height, width = (size, size) if isinstance(size, int) else size
    if resize_mode == "squash":
        resized = F.interpolate(images, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    else:
        scale = max(height / images.shape[-2], width / images.shape[-1])
        new = (max(height, round(images.shape[-2] * scale)), max(width, round(images.shape[-1] * scale)))
        resized = F.interpolate(images, size=new, mode="bicubic", align_corners=False, antialias=True)
        top, left = (new[0] - height) // 2, (new[1] - width) // 2
        resized = resized[..., top : top + height, left : left + width]
    mean = torch.tensor(mean, device=images.device)[None, :, None, None]
    std = torch.tensor(std, device=images.device)[None, :, None, None]
    return (resized.clamp(0, 1) - mean) / std


def dtype_option(options: Options) -> torch.dtype:
    name = options.text("dtype", "float32")
    if name not in _DTYPES:
        raise ValueError(f"reward {options.reward!r}: option dtype must be one of {', '.join(_DTYPES)}, got {name!r}")
    return _DTYPES[name]


@contextmanager
def _quiet_open_clip():
    # open_clip warns on the root logger that no pretrained weights were loaded: we load them next.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


@dataclass
class OpenClip:
    model: nn.Module
    tokenizer: object
    preprocess: dict
    arch: str
    embed_dim: int


def _model_name(arch: str, weights: Path, reward: str) -> str:
    """open_clip's name for the architecture: a built-in name, a config .json, or the folder's config."""
    import open_clip

    if weights.is_dir():
        if not (weights / "open_clip_config.json").is_file():
            raise ValueError(f"reward {reward!r}: folder {weights} has no open_clip_config.json; pass a weights file")
        name = f"local-dir:{weights}"
    elif arch.endswith(".json"):
        if not Path(arch).is_file():
            raise FileNotFoundError(f"reward {reward!r}: option arch={arch}: no such open_clip config file")
        name = Path(arch).stem
        # Registering appends to open_clip's search path: do it once per distinct config.
        if open_clip.get_model_config(name) != json.loads(Path(arch).read_text(encoding="utf-8")):
            open_clip.add_model_config(Path(arch))
    elif arch in open_clip.list_models():
        name = arch
    else:
        raise ValueError(
            f"reward {reward!r}: unknown open_clip architecture {arch!r}; use a name from open_clip.list_models() "
            "(e.g. ViT-B-32, ViT-L-14-quickgelu for OpenAI weights, ViT-H-14) or a model config .json"
        )
    text_cfg = open_clip.get_model_config(name).get("text_cfg", {})
    if "hf_model_name" in text_cfg or "hf_tokenizer_name" in text_cfg:
        raise ValueError(
            f"reward {reward!r}: architecture {arch!r} builds its text tower from the Hugging Face hub, "
            "which needs a download; use a CLIP-style architecture"
        )
    return name


def load_open_clip(arch: str, weights: Path, device: torch.device, dtype: torch.dtype, reward: str) -> OpenClip:
    import open_clip

    name = _model_name(arch, weights, reward)
    with _quiet_open_clip():
        model = open_clip.create_model(
            name, pretrained=None, load_weights=False, pretrained_image=False, pretrained_text=False
        )
    file = weights
    if weights.is_dir():
        file = next((weights / f for f in _FOLDER_WEIGHTS if (weights / f).is_file()), None)
        if file is None:
            raise FileNotFoundError(f"reward {reward!r}: folder {weights} holds none of {', '.join(_FOLDER_WEIGHTS)}")
    hint = "Set the option arch to the architecture the file was trained with (OpenAI weights: *-quickgelu)."
    load_into(model, load_state_dict(file, reward), file, reward, hint)
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(name)
    preprocess = open_clip.get_model_preprocess_cfg(model)
    embed_dim = open_clip.get_model_config(name)["embed_dim"]
    return OpenClip(model, tokenizer, preprocess, name.removeprefix("local-dir:"), embed_dim)


class OpenClipScore(Reward):
    """Cosine similarity of normalised image and prompt embeddings (−1..1)."""

    needs_weights = True
    default_batch_size = 32

    def __init__(self, name: str, version: str, clip: OpenClip, device, dtype, batch_size: int | None = None):
        self.name, self.version, self.clip, self.dtype = name, version, clip, dtype
        super().__init__(device, batch_size)

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        cfg = self.clip.preprocess
        pixels = clip_pixels(images, cfg["size"], cfg["mean"], cfg["std"], cfg.get("resize_mode", "shortest"))
        image = self.clip.model.encode_image(pixels.to(self.dtype), normalize=True).float()
        # A GRPO batch repeats each prompt group-size times: encode each distinct prompt once.
        unique = list(dict.fromkeys(prompts))
        tokens = self.clip.tokenizer(unique).to(self.device)
        text = self.clip.model.encode_text(tokens, normalize=True).float()
        index = torch.tensor([unique.index(p) for p in prompts], device=self.device)
        return (image * text[index]).sum(dim=-1)


class AestheticScore(Reward):
    """LAION aesthetic predictor: a head on L2-normalised CLIP image embeddings (about 1..10)."""

    needs_weights = True
    default_batch_size = 32

    def __init__(self, version: str, clip: OpenClip, head: nn.Module, device, dtype, batch_size: int | None = None):
        self.name, self.version, self.dtype = "aesthetic", version, dtype
        self.visual, self.preprocess = clip.model.visual, clip.preprocess  # the text tower is not needed
        self.head = head.to(device).eval().requires_grad_(False)
        super().__init__(device, batch_size)

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        cfg = self.preprocess
        pixels = clip_pixels(images, cfg["size"], cfg["mean"], cfg["std"], cfg.get("resize_mode", "shortest"))
        embedding = F.normalize(self.visual(pixels.to(self.dtype)).float(), dim=-1)
        return self.head(embedding).squeeze(-1)


class _Layers(nn.Module):
    def __init__(self, layers: nn.Sequential):
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def aesthetic_head(state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    """The head from its weights: LAION's MLP (`layers.N.*`, dropouts between) or a linear probe."""
    if set(state) == {"weight", "bias"}:
        head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
    else:
        linear = sorted(int(k.split(".")[1]) for k in state if k.startswith("layers.") and k.endswith(".weight"))
        if not linear:
            raise ValueError(
                f"reward 'aesthetic': {path} is neither LAION's MLP head (layers.N.weight) nor a linear head"
            )
        shapes = {i: state[f"layers.{i}.weight"].shape for i in linear}
        modules = [
            nn.Linear(shapes[i][1], shapes[i][0]) if i in shapes else nn.Identity() for i in range(linear[-1] + 1)
        ]
        head = _Layers(nn.Sequential(*modules))
    load_into(head, state, path, "aesthetic", "Use LAION's improved-aesthetic-predictor head (.pth).")
    return head


def _clip_lookup(reward: str, arch: str, option: str, given: Path | None) -> WeightsLookup:
    stem = Path(arch).stem if arch.endswith(".json") else arch
    names = (*(f"clip/{stem}{suffix}" for suffix in _CLIP_SUFFIXES), f"clip/{stem}")
    return WeightsLookup(reward, f"an open_clip checkpoint for {stem}", option, given, names)


_DEFAULT_ARCH = {"clip": "ViT-L-14-quickgelu", "hpsv2": "ViT-H-14", "hpsv2.1": "ViT-H-14"}
_HPS_FILES = {"hpsv2": "HPS_v2_compressed", "hpsv2.1": "HPS_v2.1_compressed"}


def _score_lookups(name: str, options: Options) -> list[WeightsLookup]:
    arch = options.text("arch", _DEFAULT_ARCH[name])
    if name == "clip":
        return [_clip_lookup(name, arch, "path", options.path("path"))]
    stem = _HPS_FILES[name]
    names = (f"hps/{stem}.pt", f"hps/{stem}.safetensors")
    return [WeightsLookup(name, f"the {name} checkpoint ({stem}.pt)", "path", options.path("path"), names)]


def _build_score(name: str, options: Options, device: torch.device) -> Reward:
    arch = options.text("arch", _DEFAULT_ARCH[name])
    weights = _score_lookups(name, options)[0].require()
    dtype = dtype_option(options)
    clip = load_open_clip(arch, weights, device, dtype, name)
    version = f"1:{Path(clip.arch).name}:{fingerprint(weights)}"
    return OpenClipScore(name, version, clip, device, dtype, options.integer("batch_size", None))


_AESTHETIC_HEAD = "sac+logos+ava1-l14-linearMSE"


def _aesthetic_lookups(options: Options) -> list[WeightsLookup]:
    arch = options.text("clip_arch", _DEFAULT_ARCH["clip"])
    head_names = (f"aesthetic/{_AESTHETIC_HEAD}.pth", f"aesthetic/{_AESTHETIC_HEAD}.safetensors")
    return [
        _clip_lookup("aesthetic", arch, "clip_path", options.path("clip_path")),
        WeightsLookup("aesthetic", "the aesthetic MLP head", "path", options.path("path"), head_names),
    ]


def _build_aesthetic(options: Options, device: torch.device) -> Reward:
    clip_lookup, head_lookup = _aesthetic_lookups(options)
    clip_weights, head_weights = clip_lookup.require(), head_lookup.require()
    dtype = dtype_option(options)
    clip = load_open_clip(options.text("clip_arch", _DEFAULT_ARCH["clip"]), clip_weights, device, dtype, "aesthetic")
    head = aesthetic_head(load_state_dict(head_weights, "aesthetic"), head_weights)
    expected = next(head.parameters()).shape[-1]
    if expected != clip.embed_dim:
        raise ValueError(
            f"reward 'aesthetic': head {head_weights} expects {expected}-d embeddings but CLIP {clip.arch} gives "
            f"{clip.embed_dim}-d; LAION's predictor needs ViT-L/14 (clip_arch=ViT-L-14-quickgelu)"
        )
    version = f"1:{fingerprint(clip_weights)}:{fingerprint(head_weights)}"
    return AestheticScore(version, clip, head, device, dtype, options.integer("batch_size", None))


for _name, _description in (
    ("clip", "CLIP score: cosine of image and prompt embeddings; options arch, path, dtype"),
    ("hpsv2", "Human Preference Score v2 (open_clip ViT-H-14); options path, dtype"),
    ("hpsv2.1", "Human Preference Score v2.1 (open_clip ViT-H-14); options path, dtype"),
):
    register_reward(
        RewardEntry(
            _name,
            "1",
            _description,
            build=lambda options, device, name=_name: _build_score(name, options, device),
            options=("arch", "path", "dtype"),
            needs_weights=True,
            weights=lambda options, name=_name: _score_lookups(name, options),
        )
    )
register_reward(
    RewardEntry(
        "aesthetic",
        "1",
        "LAION aesthetic predictor on CLIP ViT-L/14; options path (head), clip_path, clip_arch, dtype",
        build=_build_aesthetic,
        options=("path", "clip_path", "clip_arch", "dtype"),
        needs_weights=True,
        weights=_aesthetic_lookups,
    )
)
