"""New run: pick a preset, model, prompts, rewards and settings; see an estimate; launch.

The form is one field↔component table (FIELDS) keyed by the config's dotted names, so adding a
setting is one line and no handler depends on argument order. Launch queues the run through the
actions layer and makes sure a worker trains it; this process never trains.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..backend import actions
from ..backend.rewards.spec import RewardSpec
from ..backend.solvers import SOLVERS
from ..backend.training.config_ranges import RANGES
from .common import Context, duration, escape, shown

DEFAULT_PRESET = "tiny_neighbor_grpo"
INLINE = "(the prompts below)"


@dataclass(frozen=True)
class Field:
    key: str  # dotted config name
    label: str
    help: str
    kind: str = "number"  # number | int | solver


FIELDS = [
    Field("iterations", "Iterations", "GRPO iterations to train; the run can be cancelled and resumed any time", "int"),
    Field("group_size", "Group size G", "images per prompt compared within a group (the paper: 12)", "int"),
    Field("prompts_per_iteration", "Prompts per iteration", "prompts drawn each iteration; G images each", "int"),
    Field("optimizer.learning_rate", "Learning rate", "AdamW on the LoRA; 1e-3 suits the tiny model, 1e-5 FLUX"),
    Field("lora.rank", "LoRA rank", "size of the trained adapter; 8 is plenty for the tiny model", "int"),
    Field("neighbor.sigma_p", "σp (Neighbor GRPO)", "Eq. 7 perturbation of the shared noise; 0.3–0.6 works"),
    Field("neighbor.solver", "Rollout solver", "ODE solver for rollouts and evaluation", "solver"),
    Field("neighbor.steps", "Rollout steps", "solver steps per rollout (Neighbor GRPO)", "int"),
    Field("sde.steps", "SDE steps (baseline)", "SDE steps per rollout (the SDE baseline; DanceGRPO uses 25)", "int"),
    Field("checkpoint_every", "Checkpoint every", "iterations between checkpoints (each exports a LoRA)", "int"),
    Field("eval.every", "Evaluate every", "iterations between held-out evaluations (images + gold metric)", "int"),
]


def get(config: dict, key: str) -> Any:
    for part in key.split("."):
        config = (config or {}).get(part)
    return config


def put(config: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    config[leaf] = value


def defaults(key: str) -> Any:
    from ..backend.training.config import TrainConfig

    return get(TrainConfig().to_dict(), key)


def reward_lines(config: dict) -> str:
    specs = [RewardSpec.from_dict(r) for r in config.get("rewards") or defaults("rewards")]
    return "\n".join(spec.to_text() for spec in specs)


def parse_reward_lines(text: str) -> list[dict]:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise actions.ActionError("add at least one reward, one per line, e.g. shapes_fidelity or sharpness:0.5")
    return [RewardSpec.parse(line).to_dict() for line in lines]


def rewards_help() -> str:
    rows = ["| reward | weights | what it scores |", "|---|---|---|"]
    for info in actions.list_rewards():
        status = "none needed" if not info.needs_weights else ("found" if info.available else "**missing**")
        rows.append(f"| `{info.name}` | {status} | {info.description} |")
    return "\n".join([*rows, "", f"Plugins: {actions.plugin_status()}."])


def model_choices() -> list[tuple[str, str]]:
    return [
        (f"{m.spec} — {m.description}" + ("" if m.available else " (weights not found)"), m.spec)
        for m in actions.list_models()
    ]


def describe_memory(config: dict[str, Any]) -> str:
    """The peak-GPU-memory estimate of a real-model run (nothing for the tiny model)."""
    try:
        memory = actions.estimate_memory(config)
    except (actions.ActionError, ValueError):
        return ""
    if memory is None:
        return ""
    lines = memory.summary().splitlines()
    verdict = "" if memory.fits else " — **does not fit**"
    return f"\n\n**{lines[0]}**{verdict}\n\n" + "\n".join(f"- {escape(line.strip())}" for line in lines[1:])


def build(ctx: Context) -> dict[str, Any]:
    """The New run tab; returns the components other tabs wire to (the launch button, status)."""
    presets = {p.name: p for p in actions.list_presets()}
    sets = actions.list_prompt_sets(ctx.home)
    start = actions.load_preset(DEFAULT_PRESET) if DEFAULT_PRESET in presets else {}
    gr.Markdown("Pick a preset, adjust, and **Launch**: the run is queued and a background worker trains it.")
    with gr.Row():
        preset = gr.Dropdown(
            [(f"{p.name} — {p.description}", p.name) for p in presets.values()],
            value=DEFAULT_PRESET if start else None, label="Preset", elem_id="new.preset", scale=3,
            info="a starting point from configs/; every field below can be changed",
        )  # fmt: skip
        name = gr.Textbox(start.get("name", "run"), label="Run name", elem_id="new.name", scale=2)
    with gr.Row():
        model = gr.Dropdown(model_choices(), value=start.get("model", "tiny"), label="Model", elem_id="new.model")
        algorithm = gr.Radio(
            [("Neighbor GRPO (ODE)", "neighbor_grpo"), ("SDE baseline (DanceGRPO)", "sde_grpo")],
            value=start.get("algorithm", "neighbor_grpo"), label="Algorithm", elem_id="new.algorithm",
        )  # fmt: skip
    with gr.Group():
        with gr.Row():
            prompt_set = gr.Dropdown(
                [(f"{s.name} ({s.count} prompts, {s.source})", s.name) for s in sets] + [(INLINE, INLINE)],
                value=start.get("prompts", "shapes:train") if isinstance(start.get("prompts"), str) else INLINE,
                label="Prompts", elem_id="new.prompt_set", scale=3,
            )  # fmt: skip
            upload = gr.File(
                label="…or upload .txt / .csv / .jsonl", file_types=[".txt", ".csv", ".jsonl"],
                elem_id="new.upload", scale=2, height=120,
            )  # fmt: skip
        prompts = gr.Textbox(
            label="Prompts, one per line (used when 'Prompts' is set to the prompts below)", lines=4,
            elem_id="new.prompts", placeholder="a red circle on a blue background, top left",
        )  # fmt: skip
        prompt_info = gr.Markdown(elem_id="new.prompt_info")
    with gr.Row():
        rewards = gr.Textbox(
            reward_lines(start), label="Rewards, one per line: name[:weight] [key=value …]", lines=3,
            elem_id="new.rewards", info="rewards are z-scored within each group, then weighted", scale=3,
        )  # fmt: skip
        with gr.Accordion("Available rewards", open=False), gr.Column(scale=2):
            gr.Markdown(rewards_help())
    widgets: dict[str, gr.components.Component] = {}
    with gr.Accordion("Settings", open=True), gr.Row(equal_height=True):
        for field in FIELDS:
            value = get(start, field.key)
            value = defaults(field.key) if value is None else value
            if field.kind == "solver":
                widgets[field.key] = gr.Dropdown(list(SOLVERS), value=value, label=field.label, info=field.help)
            else:
                limits = RANGES.get(field.key)
                widgets[field.key] = gr.Number(
                    value, label=field.label, info=field.help, precision=0 if field.kind == "int" else None,
                    minimum=limits.low if limits else None, maximum=limits.high if limits else None,
                    elem_id=f"new.{field.key}", min_width=160,
                )  # fmt: skip
    estimate = gr.Markdown(elem_id="new.estimate")
    launch = gr.Button("Launch", variant="primary", elem_id="new.launch")
    status = gr.Markdown(elem_id="new.status")

    form = {"preset": preset, "name": name, "model": model, "algorithm": algorithm, "prompt_set": prompt_set}
    form |= {"prompts": prompts, "rewards": rewards, **widgets}
    inputs = set(form.values())

    def values(data: dict) -> dict[str, Any]:
        return {key: data[component] for key, component in form.items()}

    def config_from(data: dict) -> dict[str, Any]:
        v = values(data)
        config = copy.deepcopy(actions.load_preset(v["preset"])) if v["preset"] else {}
        config.update(name=v["name"], model=v["model"], algorithm=v["algorithm"])
        config["rewards"] = parse_reward_lines(v["rewards"])
        if v["prompt_set"] == INLINE:
            config["prompts"] = [line for line in (v["prompts"] or "").splitlines() if line.strip()]
        else:
            config["prompts"] = v["prompt_set"]
        for field in FIELDS:
            value = v[field.key]
            if value is None or value == "":
                raise actions.ActionError(f"{field.label} is empty; enter a number ({field.help})")
            put(config, field.key, int(value) if field.kind == "int" else value)
        return config

    @shown
    def load_preset(name_: str):
        config = actions.load_preset(name_)
        updates = {
            name: config.get("name", name_), model: config.get("model", "tiny"),
            algorithm: config.get("algorithm", "neighbor_grpo"), rewards: reward_lines(config),
        }  # fmt: skip
        if isinstance(config.get("prompts"), str):
            updates[prompt_set] = config["prompts"]
        for field in FIELDS:
            value = get(config, field.key)
            updates[widgets[field.key]] = defaults(field.key) if value is None else value
        return updates

    @shown
    def read_upload(path: str | None):
        if not path:
            return gr.skip(), gr.skip()
        loaded = actions.parse_prompt_file(path)
        return INLINE, "\n".join(loaded)

    def describe_prompts(data: dict) -> str:
        v = values(data)
        if v["prompt_set"] == INLINE:
            listed = [line.strip() for line in (v["prompts"] or "").splitlines() if line.strip()]
            if not listed:
                return "⚠ no prompts yet: type some above, upload a file, or pick a set"
            count = len(listed)
        else:
            known = {s.name: s for s in actions.list_prompt_sets(ctx.home)}.get(v["prompt_set"])
            if known is None:
                return ""
            count, listed = known.count, known.preview
        return f"**{count} prompts**, e.g. " + "; ".join(f"*{escape(p)}*" for p in listed[:3])

    def describe_estimate(data: dict) -> str:
        try:
            config = config_from(data)
            found = actions.estimate_iteration_time(ctx.home, config)
        except (actions.ActionError, ValueError):
            return ""
        if found is None:
            text = "Time per iteration: no similar run in the registry yet (the first run measures it)."
        else:
            text = (
                f"Estimated **{found.seconds_per_iteration:.2f} s per iteration**, about "
                f"**{duration(found.total_seconds)}** for {int(config['iterations'])} iterations ({found.basis})."
            )
        return text + describe_memory(config)

    @shown
    def do_launch(data: dict):
        config = config_from(data)
        queued = actions.queue_run(ctx.home, actions.RunRequest(config))
        worker = f"started a worker (pid {queued.worker_pid})" if queued.worker_pid else "a worker is training it"
        return f"✅ Queued run **{queued.run_id} · {escape(queued.name)}**; {worker}. Follow it in the Runs tab."

    preset.input(load_preset, preset, [name, model, algorithm, rewards, prompt_set, *widgets.values()])
    # Hidden progress: a refused file shows its message, not an "Error" badge over the prompt widgets.
    upload.upload(read_upload, upload, [prompt_set, prompts], show_progress="hidden")
    for trigger in (prompt_set.change, prompts.change):
        trigger(describe_prompts, inputs, prompt_info, concurrency_limit=None, show_progress="hidden")
    for component in (model, algorithm, *widgets.values()):
        component.change(describe_estimate, inputs, estimate, concurrency_limit=None, show_progress="hidden")
    launched = launch.click(do_launch, inputs, status, api_visibility="private", concurrency_limit=4)
    return {"launched": launched, "status": status, "refresh": (describe_prompts, describe_estimate, inputs),
            "prompt_info": prompt_info, "estimate": estimate}  # fmt: skip
