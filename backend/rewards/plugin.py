"""A reward from the user's own code, without touching ours: `target=path/to/file.py:name` or
`target=package.module:name`.

`name` is a function `(images, prompts, **options) -> scores`, or a class built with the other
options whose instances are called that way. Scores may be a tensor, array or list; they are
checked on every call (one finite number per image) and errors name the plugin. The version is
the object's `version` attribute if it has one, else a hash of its source file, so that editing
the file marks old scores as not comparable.

A plugin is code that runs with the user's rights, and a config or a queued run can name one: so
plugins load only when the user opted in with NGRPO_ALLOW_PLUGINS=1 (or `allow_plugins()`, which
the CLI's --allow-plugins calls), and every plugin loaded is logged with its file and hash.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from pathlib import Path

import torch

from .base import Reward, RewardError
from .options import Options
from .registry import ANY_OPTION, COMMON_OPTIONS, RewardEntry, register_reward

_OWN_OPTIONS = ("target", "version")
PLUGINS_ENV = "NGRPO_ALLOW_PLUGINS"
log = logging.getLogger(__name__)


def plugins_allowed() -> bool:
    """Whether reward plugins may load here (the dashboard shows this)."""
    return os.environ.get(PLUGINS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def plugin_status() -> str:
    """One line for front ends: whether plugins load, and how to change it."""
    if plugins_allowed():
        return f"reward plugins are allowed ({PLUGINS_ENV}=1): configs may run the Python code they name"
    return f"reward plugins are off; set {PLUGINS_ENV}=1 (or pass --allow-plugins) to run your own reward code"


def allow_plugins() -> None:
    """Opt in for this process and the workers it starts (they inherit the environment)."""
    os.environ[PLUGINS_ENV] = "1"


def require_plugins_allowed(target: str) -> None:
    if not plugins_allowed():
        raise RewardError(
            f"reward plugin {target!r} not loaded: plugins run arbitrary Python code, so they are off by default; "
            f"set {PLUGINS_ENV}=1 (or pass --allow-plugins) if you trust this file"
        )


def _import_failure(target: str, where: str, error: BaseException) -> RewardError:
    """Name the plugin, the file and line where importing it failed, and the error."""
    frames = traceback.extract_tb(error.__traceback__)
    line = ""
    if isinstance(error, SyntaxError) and error.lineno:
        line = f" (line {error.lineno})"
    elif frames:
        line = f" ({Path(frames[-1].filename).name} line {frames[-1].lineno})"
    return RewardError(
        f"reward plugin {target!r}: importing {where} failed{line}: {type(error).__name__}: {error}; "
        "fix the plugin (run `python FILE` to see the whole error)"
    )


def _is_file_target(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def load_target(target: str) -> object:
    """The object `target` names, importing its file or module."""
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise ValueError(f"plugin target {target!r} must look like path/to/file.py:name or package.module:name")
    require_plugins_allowed(target)
    if _is_file_target(module_name):
        path = Path(module_name).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"plugin target {target!r}: no such file {path}")
        # A unique module name per file lets two plugin files share a stem.
        unique = "ngrpo_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(unique, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(unique, None)
            raise _import_failure(target, str(path), error) from None
        log.warning("loaded reward plugin %s (sha256 %s)", path, _file_hash(path))
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            raise RewardError(
                f"reward plugin {target!r}: no module {error.name!r}; install it, or give a file path (file.py:name)"
            ) from None
        except Exception as error:
            raise _import_failure(target, f"module {module_name}", error) from None
        log.warning("loaded reward plugin module %s from %s", module_name, getattr(module, "__file__", "?"))
    if not hasattr(module, attribute):
        raise ValueError(f"plugin target {target!r}: {module_name} defines no {attribute!r}")
    return getattr(module, attribute)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _source_hash(obj: object) -> str:
    source = inspect.getsourcefile(obj) if inspect.isclass(obj) or inspect.isfunction(obj) else None
    if source is None or not Path(source).is_file():
        return "unversioned"
    return _file_hash(Path(source))


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


def _check_queueable(options: Options) -> None:
    # Runs when a run is queued: without the opt-in it is refused then, not in the worker.
    require_plugins_allowed(str(options.values.get("target", "")))


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
        check=_check_queueable,
    )
)
