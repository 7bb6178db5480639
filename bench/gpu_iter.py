"""Seconds per iteration and peak GPU memory of Neighbor GRPO vs the SDE baseline on real-size
transformers (random weights: SD3.5-medium and FLUX.1-dev shapes from the shipped configs).

    python bench/gpu_iter.py --json gpu_iter.json           # on a GPU: a few minutes
    python bench/gpu_iter.py --tiny --json /tmp/tiny.json   # the same code path on CPU, small shapes

Per case (family × algorithm × gradient checkpointing, plus FLUX with an int8 base): one warm-up
iteration, then `--iterations` timed ones with a LoRA (r 32) trained in bf16 autocast on a bf16
base, G = 12 samples of one prompt at 512² (the paper's FLUX setting). Text encoders and the VAE
are not in the loop (prompt encodings are cached and decoding is a few ms per image): the
conditioning is random tensors of the real shapes, and rewards are random numbers, so the figures
are the transformer's cost, which dominates. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT.parent) not in sys.path:
    sys.path.insert(0, str(ROOT.parent))

from neighbor_grpo.backend.algorithms.neighbor_grpo import NeighborGRPO  # noqa: E402
from neighbor_grpo.backend.algorithms.sde_grpo import SdeGRPO  # noqa: E402
from neighbor_grpo.backend.models.architectures import shipped_config  # noqa: E402
from neighbor_grpo.backend.models.base import Conditioning  # noqa: E402
from neighbor_grpo.backend.models.flux import FluxFlowModel  # noqa: E402
from neighbor_grpo.backend.models.latent import FrozenParts  # noqa: E402
from neighbor_grpo.backend.models.loading import quantize_base, transformer_class  # noqa: E402
from neighbor_grpo.backend.models.sd3 import SD3FlowModel  # noqa: E402
from neighbor_grpo.backend.training.config import LoraSettings, NeighborSettings, SdeSettings  # noqa: E402
from neighbor_grpo.backend.training.lora import add_lora  # noqa: E402

FAMILIES = {
    "sd3": ("transformer_sd35_medium", SD3FlowModel, 77 + 256),
    "flux": ("transformer_flux1_dev", FluxFlowModel, 512),
}
# --tiny: the same classes and code path with a few small blocks, for CPU.
TINY = {
    "sd3": {"num_layers": 2, "num_attention_heads": 2, "caption_projection_dim": 128, "joint_attention_dim": 64,
            "pooled_projection_dim": 32, "dual_attention_layers": [0]},
    "flux": {"num_layers": 1, "num_single_layers": 2, "num_attention_heads": 2, "joint_attention_dim": 64,
             "pooled_projection_dim": 32},
}  # fmt: skip


def build(family: str, tiny: bool, device: torch.device, quantize: str):
    name, cls, text_tokens = FAMILIES[family]
    config = {**shipped_config(name), **(TINY[family] if tiny else {})}
    torch.manual_seed(0)
    with torch.device(device):
        transformer = transformer_class(family).from_config(config).to(torch.bfloat16)
    quantize_base(transformer, quantize)
    # The loop never decodes: a stand-in carrying the VAE config the adapter reads (×8, 16 channels).
    vae = SimpleNamespace(config=SimpleNamespace(block_out_channels=[128, 256, 512, 512], latent_channels=16))
    model = cls(transformer, FrozenParts(vae, {}), f"random {name}").eval().requires_grad_(False)
    cond = Conditioning(
        torch.randn(1, 77 if tiny else text_tokens, config["joint_attention_dim"], device=device, dtype=torch.bfloat16),
        torch.randn(1, config["pooled_projection_dim"], device=device, dtype=torch.bfloat16),
    )
    if family == "sd3":  # CFG 4.5 as Flow-GRPO trains SD3.5: a negative prompt's encodings
        cond.extra = {"neg_context": torch.zeros_like(cond.context), "neg_pooled": torch.zeros_like(cond.pooled)}
        model.guidance = 4.5
    return model, cond


def one_case(args, family: str, algorithm: str, checkpointing: bool, quantize: str) -> dict:
    device = torch.device(args.device)
    model, cond = build(family, args.tiny, device, quantize)
    if checkpointing:
        model.transformer.enable_gradient_checkpointing()
    params = add_lora(model, LoraSettings(rank=32, alpha=32))
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    resolution = 64 if args.tiny else args.resolution
    if algorithm == "neighbor_grpo":
        settings = NeighborSettings(sigma_p=0.3, steps=8, anchors=4, trained_steps=4)
        algo = NeighborGRPO(settings, args.group, sigmas=model.sigmas(settings.steps, resolution=resolution))
    else:
        settings = SdeSettings(steps=25, train_fraction=0.6)
        algo = SdeGRPO(settings, args.group, sigmas=model.sigmas(settings.steps, resolution=resolution))

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16)

    generator, rng = torch.Generator().manual_seed(0), random.Random(0)
    timings = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for iteration in range(args.iterations + 1):
        sync(device)
        start = time.perf_counter()
        base = torch.randn(model.noise_shape(1, resolution), generator=generator)
        rollout = algo.rollout(model, cond, base, generator, autocast)
        sync(device)
        rolled = time.perf_counter()
        advantages = algo.advantages(torch.randn(args.group, generator=generator).to(device))
        algo.plan(rollout, rng)
        optimizer.zero_grad(set_to_none=True)
        algo.accumulate_gradients(model, rollout, advantages, args.micro_batch, autocast)
        optimizer.step()
        sync(device)
        done = time.perf_counter()
        if iteration > 0:  # the first iteration warms kernels and the allocator
            timings.append((done - start, rolled - start, done - rolled))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    mean = [sum(t[i] for t in timings) / len(timings) for i in range(3)]
    return {
        "family": family, "algorithm": algorithm, "gradient_checkpointing": checkpointing, "quantize": quantize,
        "s_per_iter": mean[0], "rollout_s": mean[1], "train_s": mean[2], "rollout_share": mean[1] / mean[0],
        "peak_gb": peak, "nfe_old": algo.nfe_old, "nfe_theta": algo.nfe_theta,
    }  # fmt: skip


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="small shapes on the CPU: checks the code path only")
    parser.add_argument("--family", choices=["sd3", "flux", "both"], default="both")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per case (after one warm-up)")
    parser.add_argument("--group", type=int, default=12)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.device.startswith("cuda") and args.tiny:
        print("note: --tiny on a GPU measures nothing useful; it exists to check the script on a CPU")
    families = ["sd3", "flux"] if args.family == "both" else [args.family]
    cases = [(f, a, c, "none") for f in families for a in ("neighbor_grpo", "sde_grpo") for c in (False, True)]
    if "flux" in families:
        cases += [("flux", a, True, "int8") for a in ("neighbor_grpo", "sde_grpo")]
    results = []
    for case in cases:
        with (
            contextlib.suppress(torch.cuda.OutOfMemoryError)
            if args.device.startswith("cuda")
            else contextlib.nullcontext()
        ):
            results.append(one_case(args, *case))
            continue
        results.append(
            dict(zip(("family", "algorithm", "gradient_checkpointing", "quantize"), case, strict=True), oom=True)
        )
        torch.cuda.empty_cache()
    print_table(results)
    report = {"device": describe(args.device), "tiny": args.tiny, "resolution": 64 if args.tiny else args.resolution,
              "group": args.group, "results": results, "ratios": ratios(results)}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def ratios(results: list[dict]) -> dict[str, float]:
    """SDE s/iter ÷ Neighbor s/iter for each family and setting (the paper: 5.3× on FLUX)."""
    out = {}
    for r in results:
        if r["algorithm"] != "neighbor_grpo" or r.get("oom"):
            continue
        key = (r["family"], r["gradient_checkpointing"], r["quantize"])
        sde = next((s for s in results if s["algorithm"] == "sde_grpo" and not s.get("oom")
                    and (s["family"], s["gradient_checkpointing"], s["quantize"]) == key), None)  # fmt: skip
        if sde is not None:
            out[f"{r['family']} ckpt={r['gradient_checkpointing']} quant={r['quantize']}"] = (
                sde["s_per_iter"] / r["s_per_iter"]
            )
    return out


def describe(device: str) -> str:
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}"
    return f"CPU ({torch.get_num_threads()} threads), torch {torch.__version__}"


def print_table(results: list[dict]) -> None:
    print("| family | algorithm | grad ckpt | base | s/iter | rollout share | peak GB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if r.get("oom"):
            cells = ["out of memory", "", ""]
        else:
            cells = [f"{r['s_per_iter']:.2f}", f"{r['rollout_share']:.0%}", f"{r['peak_gb']:.1f}"]
        base = "bf16" if r["quantize"] == "none" else r["quantize"]
        print(
            f"| {r['family']} | {r['algorithm']} | {r['gradient_checkpointing']} | {base} | " + " | ".join(cells) + " |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
