"""Where learned rewards find their weights, and how they read them. Never from the network.

A weights file comes from the reward's `path`-like option, else from a fixed name under the folder
in $NGRPO_REWARD_WEIGHTS (the layout is in docs/rewards.md). Files are read as plain tensors
(safetensors, or torch.load with weights_only=True): a checkpoint cannot run code.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

ENV_VAR = "NGRPO_REWARD_WEIGHTS"
_FINGERPRINT_BYTES = 1 << 20


class MissingWeightsError(FileNotFoundError):
    """A learned reward's weights are not where the user said, or not anywhere we may look."""


@dataclass(frozen=True)
class WeightsLookup:
    """One file (or folder) a reward needs: the user's option, else names under $NGRPO_REWARD_WEIGHTS."""

    reward: str
    what: str
    option: str
    given: Path | None
    default_names: tuple[str, ...]
    inside: str | None = None  # set when the weights are a folder that must hold this file

    def candidates(self) -> list[Path]:
        if self.given is not None:
            return [self.given]
        root = os.environ.get(ENV_VAR)
        return [Path(root).expanduser() / name for name in self.default_names] if root else []

    def _exists(self, path: Path) -> bool:
        return (path / self.inside).is_file() if self.inside else path.exists()

    def find(self) -> Path | None:
        return next((path for path in self.candidates() if self._exists(path)), None)

    def require(self) -> Path:
        found = self.find()
        if found is not None:
            return found
        how = (
            f'point at it with the option {self.option}=... (e.g. --reward "{self.reward} {self.option}=/models/...")'
            f" or put it under ${ENV_VAR} as {' or '.join(self.default_names)}"
        )
        if self.given is not None:
            where = f"{self.given} does not exist" + (f" or has no {self.inside}" if self.inside else "")
        elif os.environ.get(ENV_VAR):
            where = "looked for " + ", ".join(str(path) for path in self.candidates()) + ": none exists"
        else:
            where = f"option {self.option} is not set and ${ENV_VAR} is not set"
        raise MissingWeightsError(
            f"reward {self.reward!r} needs {self.what}: {where}. Nothing is downloaded; {how}. See docs/rewards.md."
        )


def fingerprint(path: Path) -> str:
    """A cheap identity for a weights file or folder: size plus first and last MiB of each file."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(_FINGERPRINT_BYTES))
            if size > 2 * _FINGERPRINT_BYTES:
                handle.seek(-_FINGERPRINT_BYTES, os.SEEK_END)
                digest.update(handle.read())
    return digest.hexdigest()[:12]


def load_state_dict(path: Path, reward: str) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a torch checkpoint (unwrapping `state_dict`/`model`
    and a DataParallel `module.` prefix, as training scripts save them)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several unrelated types for unsafe or foreign files
            raise ValueError(
                f"reward {reward!r}: cannot read {path} as plain tensors ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}). TorchScript archives and pickles "
                "with code are refused; convert the file to .safetensors"
            ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"reward {reward!r}: {path} does not hold a state dict of tensors")
    if state and all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, reward: str, hint: str) -> None:
    """Strict load with an error that says which keys disagree and what to change."""
    own = module.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    resized = [
        f"{key} {list(state[key].shape)} vs {list(own[key].shape)}"
        for key in own
        if key in state and state[key].shape != own[key].shape
    ]
    if missing or unexpected or resized:
        problems = [
            f"{len(keys)} {what}, e.g. {keys[:2]}"
            for keys, what in (
                (missing, "missing keys"),
                (unexpected, "unexpected keys"),
                (resized, "keys of another shape (file vs model)"),
            )
            if keys
        ]
        raise ValueError(f"reward {reward!r}: {path} does not fit the model ({'; '.join(problems)}). {hint}")
    module.load_state_dict(state)
