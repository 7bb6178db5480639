"""Training on several processes (GPUs, or CPU processes on gloo) with torch.distributed.

The trainer runs unchanged under `torchrun` or `accelerate launch` (both set RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous variables). Each iteration's prompt groups are split into equal
contiguous shards, one per rank; rollouts, rewards and the within-group advantages stay local, and
the trainable gradients are averaged with an all-reduce before clipping and the optimizer step, so
every rank keeps identical weights (LoRA or full). With `distributed.fsdp: true` a full fine-tune
instead shards the transformer with torch's FSDP2 (`fsdp.py`): each rank holds 1/N of its
parameters, gradients and optimizer state, FSDP's backward averages the gradients itself (so
`average_gradients` is skipped), and checkpoints gather the full state onto rank 0.

Randomness: prompt order and the trained steps come from the run's seed and are drawn identically
on every rank; the noise and the anchors of a prompt group come from a stream derived from
(seed, iteration, global group index). No two ranks share noise, and a run's result does not
depend on how many ranks share its work (a test checks 1 vs 2 processes).

Only rank 0 writes to the registry and the run folder; the other ranks report into a muted
reporter and receive rank 0's control flags (cancel, stop, save now, sample now) and evaluation.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .reporting import CheckpointRecord, ControlFlags, Reporter, SampleRecord


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Topology:
        """What torchrun / accelerate launch told this process; one process when run directly."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, wanted: torch.device) -> torch.device:
        """Under torchrun every local rank gets its own GPU."""
        if self.distributed and wanted.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return wanted

    def start(self, device: torch.device) -> None:
        """Join the process group (idempotent): NCCL on GPUs, gloo on CPU."""
        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def shard(self, total: int, what: str = "prompts_per_iteration") -> range:
        """The contiguous block of `total` items (prompt groups) this rank owns."""
        if total % self.world:
            raise ValueError(
                f"{what} ({total}) must be a multiple of the number of processes ({self.world}) "
                "so every rank trains the same number of groups; change one of them"
            )
        size = total // self.world
        return range(self.rank * size, (self.rank + 1) * size)

    # -- collectives (no-ops on one process) --------------------------------------------------
    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Mean of the gradients over ranks, in one flat all-reduce; each parameter's gradient
        becomes a view of the reduced buffer (no second copy: the trainer sets gradients to None
        before the next backward, so the views are never accumulated into across steps)."""
        if not self.distributed:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for param, grad in zip(params, grads, strict=True):
            count = grad.numel()
            param.grad = flat[offset : offset + count].view_as(grad)
            offset += count

    def average_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Mean over ranks of per-shard metrics (shards are equal, so means of means are exact)."""
        if not self.distributed:
            return metrics
        names = sorted(metrics)
        values = torch.tensor(
            [float(metrics[name]) for name in names], dtype=torch.float64, device=self._collective_device()
        )
        dist.all_reduce(values)
        return {name: v / self.world for name, v in zip(names, values.cpu().tolist(), strict=True)}

    def broadcast(self, value):
        """Rank 0's `value` on every rank (any picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_parameters(self, params) -> None:
        if not self.distributed:
            return
        for param in params:
            dist.broadcast(param.data, src=0)

    def _collective_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")

    def stop(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def group_generator(seed: int, iteration: int, group: int) -> torch.Generator:
    """The random stream of one prompt group in one iteration: independent of which rank owns it."""
    digest = hashlib.blake2b(f"{seed}/{iteration}/{group}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


class RankReporter:
    """Rank 0 reports through the real reporter; other ranks write nothing. Control flags are
    rank 0's, broadcast, so every rank stops, saves and samples at the same iteration."""

    def __init__(self, inner: Reporter, topology: Topology):
        self.inner, self.topology = inner, topology

    def _main(self, name: str, *args) -> None:
        if self.topology.is_main:
            getattr(self.inner, name)(*args)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self._main("metrics", step, values)

    def samples(self, step: int, records: list[SampleRecord]) -> None:
        self._main("samples", step, records)

    def checkpoint(self, record: CheckpointRecord) -> None:
        self._main("checkpoint", record)

    def progress(self, step: int, total: int) -> None:
        self._main("progress", step, total)

    def rewind(self, step: int) -> None:
        self._main("rewind", step)

    def flush(self) -> None:
        self._main("flush")

    def poll(self) -> ControlFlags:
        return self.topology.broadcast(self.inner.poll() if self.topology.is_main else None)
