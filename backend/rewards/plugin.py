"""A reward from the user's own code, without touching ours: `target=path/to/file.py:name` or
`target=package.module:name`.

`name` is a function `(images, prompts, **options) -> scores`, or a class built with the other
options whose instances are called that way. Scores may be a tensor, array or list; they are
checked on every call (one finite number per image) and errors name the plugin. The version is
the object's `version` attribute if it has one, else a hash of its source file, so that editing
the file marks old scores as not comparable.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch

from .base import Reward
from .options import Options
from .registry import ANY_OPTION, COMMON_OPTIONS, RewardEntry, register_reward

_OWN_OPTIONS = ("target", "version")


def _is_file_target(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def load_target(target: str) -> object:
    """The object `target` names, importing its file or module."""
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise ValueError(f"plugin target {target!r} must look like path/to/file.py:name or package.module:name")
    if _is_file_target(module_name):
        path = Path(module_name).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"plugin target {target!r}: no such file {path}")
        # A unique module name per file lets two plugin files share a stem.
        unique = "ngrpo_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(unique, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    if not hasattr(module, attribute):
        raise ValueError(f"plugin target {target!r}: {module_name} defines no {attribute!r}")
    return getattr(module, attribute)


def _source_hash(obj: object) -> str:
    source = inspect.getsourcefile(obj) if inspect.isclass(obj) or inspect.isfunction(obj) else None
    if source is None or not Path(source).is_file():
        return "unversioned"
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12]


class PluginReward(Reward):
    name = "plugin"

    def __init__(self, target: str, device, batch_size: int | None = None, version: str | None = None, **kwargs):
        super().__init__(device, batch_size)
        self.target = target
        obj = load_target(target)
        if inspect.isclass(obj):
            self._call, self._kwargs = obj(**kwargs), {}
        elif callable(obj):
            self._call, self._kwargs = obj, kwargs
        else:
            raise ValueError(f"plugin target {target!r} is a {type(obj).__name__}, not a function or class")
        self.version = version or str(getattr(obj, "version", "")) or f"file:{_source_hash(obj)}"

    @property
    def label(self) -> str:
        return f"reward plugin {self.target!r}"

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self._call(images, prompts, **self._kwargs)  # the base class checks what comes back


def _build(options: Options, device: torch.device) -> Reward:
    target = options.require("target", "my_rewards.py:score")
    extra = {k: v for k, v in options.values.items() if k not in (*_OWN_OPTIONS, *COMMON_OPTIONS)}
    return PluginReward(target, device, options.integer("batch_size", None), options.text("version"), **extra)


register_reward(
    RewardEntry(
        "plugin",
        "1",
        "your own function or class: option target=file.py:name or package.module:name",
        build=_build,
        options=(*_OWN_OPTIONS, ANY_OPTION),
    )
)
