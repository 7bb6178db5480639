"""Full fine-tuning with the training state sharded over the processes: torch's FSDP2.

With `distributed.fsdp: true` on N processes, every transformer block and then the transformer
itself are wrapped with `torch.distributed.fsdp.fully_shard`: each rank keeps 1/N of the
parameters, gradients and AdamW moments, the forward all-gathers a block's weights just before it
runs, and the backward reduce-scatters (averages) the gradients, so the trainer does not average
them itself. Everything outside the transformer (text encoders, VAE, rewards) stays replicated.

Checkpoints stay in the one format a single-process full fine-tune writes (the weights by name in
`trainable.safetensors`, the optimizer's own `state_dict()` numbered by parameter): every rank
takes part in gathering the full state, rank 0 writes it, and a resume hands rank 0's copy to the
others. So a run can resume with or without FSDP, on any number of processes, and its exported
weights are ordinary.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from ..models.registry import is_registered, load_model

# Gathered onto rank 0 in host memory only: the full state of a model that does not fit on one
# GPU must never be assembled on one.
_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)
# Rank 0 reads the checkpoint and sends each tensor to the other ranks, which keep their shard.
_SCATTER = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)


def refuse_accelerate_fsdp() -> None:
    """accelerate's own FSDP (`--use_fsdp`, or an accelerate config with FSDP) only wraps models
    handed to an `Accelerator`, which this trainer never creates; but its variables make
    transformers load text encoders empty ("meta") on every rank but 0, expecting FSDP1 to fill
    them in. Refuse it: our FSDP2 is switched on in the run's config."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ValueError(
            "accelerate's FSDP is on (accelerate launch --use_fsdp, or an accelerate config with "
            "distributed_type: FSDP); this trainer shards with its own torch FSDP2 instead. Launch with "
            "`accelerate launch --multi_gpu --num_processes N` and set distributed.fsdp: true in the run's config"
        )


def blocks_of(transformer: nn.Module) -> list[nn.Module]:
    """The transformer's repeated blocks, each sharded (and gathered for its forward) as a unit.

    diffusers names them in `_no_split_modules` (SD3's JointTransformerBlock, FLUX's two block
    kinds); a model without that list falls back to the items of its top-level ModuleLists.
    """
    names = set(getattr(transformer, "_no_split_modules", None) or ())
    blocks = [module for module in transformer.modules() if type(module).__name__ in names]
    if not blocks:
        lists = [child for child in transformer.children() if isinstance(child, nn.ModuleList)]
        blocks = [block for blocks in lists for block in blocks]
    return blocks


def load_for_sharding(spec, device: torch.device) -> nn.Module:
    """The run's model for a sharded full fine-tune, its transformer still in host memory: only
    shard_transformer moves it to `device`, one block at a time as it shards them, so the whole
    fp32 transformer never has to fit on one GPU. Everything else goes to `device` now (a real
    model's frozen parts stay off its module tree and visit the GPU while they run)."""
    # The frozen parts' dtype a real model gets when loaded on a GPU directly (bf16).
    dtype = torch.bfloat16 if device.type == "cuda" and not is_registered(spec) else None
    model = load_model(spec, "cpu", dtype)
    for child in model.children():
        if child is not model.transformer:
            child.to(device)
    return model


def shard_transformer(transformer: nn.Module, device: torch.device) -> None:
    """Shard `transformer` in place over every process of the default group (per block, then the
    rest at the root), moving each shard to `device`. Its weights must be equal on every rank."""
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    for block in blocks_of(transformer):
        fully_shard(block, mesh=mesh)
    fully_shard(transformer, mesh=mesh)


def shard_summary(transformer: nn.Module) -> str:
    """What this rank holds of the transformer's parameters (its gradients and AdamW moments are
    sharded the same way): the line a run's log shows once it is sharded."""
    params = list(transformer.parameters())
    local = sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in params)
    total = sum(p.numel() for p in params)
    size = sum((p.to_local() if isinstance(p, DTensor) else p).nbytes for p in params)
    return f"FSDP rank {dist.get_rank()}: holds {local} of {total} transformer parameters ({size / 2**20:.2f} MiB)"


def held_bytes(params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes this rank holds of the trained parameters, their gradients and the optimizer state
    (only this rank's shards when sharded): what FSDP divides by the number of processes."""

    def size(tensor: torch.Tensor) -> int:
        return (tensor.to_local() if isinstance(tensor, DTensor) else tensor).nbytes

    moments = [value for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)]
    return {
        "parameters": sum(size(p) for p in params),
        "gradients": sum(size(p.grad) for p in params if p.grad is not None),
        "optimizer": sum(size(value) for value in moments),
    }


def global_norm(norm: torch.Tensor) -> float:
    """The gradient norm clip_grad_norm_ returned, as one number: over sharded gradients it is a
    DTensor whose full value needs the other ranks' shards (a collective: call on every rank)."""
    if isinstance(norm, DTensor):
        norm = norm.full_tensor()
    return float(norm)


def gather_full_state(transformer: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """(weights by name, optimizer state in `optimizer.state_dict()`'s format) on rank 0, in host
    memory; empty dicts on the other ranks. A collective: every rank must call it."""
    weights = get_model_state_dict(transformer, options=_GATHER)
    if not optimizer.state:
        # Before the first step there is nothing to gather (the ranks step together, so all take
        # this branch), and torch.distributed.checkpoint would first "initialise" the state with a
        # zero-gradient step that Adam then counts as one.
        return weights, (optimizer.state_dict() if dist.get_rank() == 0 else {})
    gathered = get_optimizer_state_dict(transformer, optimizer, options=_GATHER)
    if not gathered:
        return weights, {}
    # torch.distributed.checkpoint keys the state by parameter name (and turns tuples into lists);
    # a plain optimizer numbers its parameters in group order. The hyper-parameters are the same
    # on every rank, so the local optimizer's own groups are the plain ones.
    index = {name: number for number, name in enumerate(_parameter_names(transformer, optimizer))}
    state = {index[name]: value for name, value in gathered["state"].items()}
    return weights, {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}


def load_full_state(
    transformer: nn.Module, optimizer: torch.optim.Optimizer, weights: dict, optimizer_state: dict
) -> None:
    """Restore the full `weights` and `optimizer_state` (as gather_full_state returns them) that
    rank 0 read; the other ranks pass empty dicts and receive their shards. A collective."""
    if dist.get_rank() != 0:
        weights, optimizer_state = {}, {}
    set_model_state_dict(transformer, weights, options=_SCATTER)
    # A checkpoint from before the first step holds hyper-parameters only: every rank loads them
    # as they are (torch.distributed.checkpoint would make up a first step, see above).
    stateless = [optimizer_state if dist.get_rank() == 0 and not optimizer_state["state"] else None]
    dist.broadcast_object_list(stateless, src=0)
    if stateless[0] is not None:
        optimizer.load_state_dict(stateless[0])
        return
    if dist.get_rank() == 0:
        optimizer_state = _named(optimizer_state, _parameter_names(transformer, optimizer))
    tuples = [{key for key, value in group.items() if isinstance(value, tuple)} for group in optimizer.param_groups]
    set_optimizer_state_dict(transformer, optimizer, optimizer_state, options=_SCATTER)
    # It hands tuples back as lists (AdamW's betas); restore them, so that the next checkpoint's
    # hyper-parameters equal an unsharded run's exactly.
    for group, keys in zip(optimizer.param_groups, tuples, strict=True):
        group.update({key: tuple(group[key]) for key in keys})


def _parameter_names(transformer: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of every parameter in the optimizer's own order (the numbering of its state_dict)."""
    names = {id(param): name for name, param in transformer.named_parameters()}
    return [names[id(param)] for group in optimizer.param_groups for param in group["params"]]


def _named(state: dict, names: list[str]) -> dict:
    """A plain optimizer state_dict() keyed by parameter name, as torch.distributed.checkpoint
    expects it."""
    groups = [{**group, "params": [names[i] for i in group["params"]]} for group in state["param_groups"]]
    return {"state": {names[int(i)]: value for i, value in state["state"].items()}, "param_groups": groups}
