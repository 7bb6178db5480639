"""What the trainer reports and what it is told, as plain records shared by the trainer and the
registry. Standard library only: storage and front ends import this without the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SampleRecord:
    """One evaluation image: its file is relative to the run folder."""

    prompt: str
    seed: int
    path: str
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class CheckpointRecord:
    step: int
    folder: str  # relative to the run folder
    files: dict[str, str]  # file name → sha256
    lora_path: str | None = None  # exported LoRA, relative to the run folder


@dataclass
class ControlFlags:
    cancel: bool = False  # end the run for good (status "cancelled"), after a checkpoint
    stop: bool = False  # checkpoint and leave the run resumable (worker shutdown, SIGTERM)
    save_now: bool = False
    sample_now: bool = False
