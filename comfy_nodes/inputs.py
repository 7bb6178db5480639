"""The nodes that describe a run: Prompt Set, Reward (chainable) and Training Config."""

from __future__ import annotations

from comfy_api.latest import io

from ..backend import actions
from ..backend.solvers import SOLVERS
from ..backend.training.config import ALGORITHMS
from . import requests
from .common import CATEGORY, PROMPTS, REWARDS, TRAIN_CONFIG, node_id, validation


def prompt_set_choices() -> list[str]:
    # Built-in and saved sets come from the registry; a missing registry must not break loading.
    names = [info.name for info in actions.list_prompt_sets()]
    return [requests.TEXT_SOURCE, requests.FILE_SOURCE, *names]


def resolve_prompts(source: str, text: str, file: str) -> str | list[str]:
    chosen = requests.prompt_source(source, text, file)
    if source == requests.FILE_SOURCE:
        actions.parse_prompt_file(chosen)  # an unreadable or empty file fails here, not in the worker
    elif source != requests.TEXT_SOURCE and source not in (choices := prompt_set_choices()):
        raise actions.ActionError(f"no prompt set {source!r}; choose one of {', '.join(choices)}")
    return chosen


class PromptSet(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("PromptSet"),
            display_name="Prompt Set",
            category=CATEGORY,
            description="The prompts a run trains on: typed here (one per line), a file, or a saved set.",
            inputs=[
                io.Combo.Input(
                    "source",
                    options=prompt_set_choices(),
                    default=requests.TEXT_SOURCE,
                    tooltip="where the prompts come from: the text box, a file, or a built-in/saved set",
                ),
                io.String.Input(
                    "text",
                    multiline=True,
                    default="a red circle on a blue background, top left\na yellow square on a green background, bottom right",
                    tooltip="one prompt per line (used when source is 'text below')",
                ),
                io.String.Input(
                    "file",
                    default="",
                    tooltip="path of a .txt (one prompt per line), .csv (a 'prompt' column) or .jsonl file "
                    "(used when source is 'file below')",
                ),
            ],
            outputs=[PROMPTS.Output(display_name="prompts")],
        )

    @classmethod
    def validate_inputs(cls, source: str | None = None, text: str | None = None, file: str | None = None):
        if source is None:  # linked
            return True
        return validation(resolve_prompts, source, text or "", file or "")

    @classmethod
    def execute(cls, source: str, text: str, file: str) -> io.NodeOutput:
        return io.NodeOutput(resolve_prompts(source, text, file))


class Reward(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("Reward"),
            display_name="Reward",
            category=CATEGORY,
            description="One reward with its weight; chain several into the list a run maximises.",
            inputs=[
                io.Combo.Input(
                    "name",
                    options=[info.name for info in actions.list_rewards()],
                    default="shapes_fidelity",
                    tooltip="the reward model or metric (learned ones need their weights file: see options)",
                ),
                io.Float.Input(
                    "weight", default=1.0, min=-100.0, max=100.0, step=0.05, tooltip="its weight in the total reward"
                ),
                io.String.Input(
                    "options",
                    default="",
                    tooltip="key=value settings separated by spaces, e.g. path=/models/clip.safetensors or target=0.5",
                ),
                REWARDS.Input("previous", optional=True, tooltip="rewards chained before this one"),
            ],
            outputs=[REWARDS.Output(display_name="rewards")],
        )

    # Naming inputs here makes ComfyUI skip its own checks of them (the combo's list included):
    # add_reward checks the name, options and weights files instead. None: the input is linked.
    @classmethod
    def validate_inputs(cls, name: str | None = None, weight: float | None = None, options: str | None = None):
        if name is None or weight is None:
            return True
        return validation(requests.add_reward, None, name, weight, options or "")

    @classmethod
    def execute(cls, name: str, weight: float, options: str, previous: list[dict] | None = None) -> io.NodeOutput:
        return io.NodeOutput(requests.add_reward(previous, name, weight, options))


class TrainingConfig(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        d = requests.config_default
        return io.Schema(
            node_id=node_id("TrainingConfig"),
            display_name="Training Config",
            category=CATEGORY,
            description="The algorithm and its settings; defaults are the CLI's (backend/training/config.py).",
            inputs=[
                io.Combo.Input(
                    "algorithm",
                    options=list(ALGORITHMS),
                    default=d("algorithm"),
                    tooltip="neighbor_grpo (ODE rollouts, the paper) or sde_grpo (the DanceGRPO-style baseline)",
                ),
                io.Int.Input("iterations", default=d("iterations"), min=1, max=100000, tooltip="training iterations"),
                io.Int.Input(
                    "group_size", default=d("group_size"), min=2, max=256, tooltip="samples per prompt (G) compared"
                ),
                io.Int.Input(
                    "prompts_per_iteration",
                    default=d("prompts_per_iteration"),
                    min=1,
                    max=256,
                    tooltip="prompts drawn per iteration",
                ),
                io.Float.Input(
                    "learning_rate",
                    default=d("optimizer.learning_rate"),
                    min=1e-7,
                    max=1.0,
                    step=1e-5,
                    round=False,
                    tooltip="AdamW learning rate (1e-3 for the embedded model, about 1e-5 for FLUX)",
                ),
                io.Int.Input("lora_rank", default=d("lora.rank"), min=1, max=512, tooltip="LoRA rank (alpha = rank)"),
                io.Float.Input(
                    "sigma_p",
                    default=d("neighbor.sigma_p"),
                    min=0.01,
                    max=0.99,
                    step=0.05,
                    tooltip="Neighbor GRPO's noise perturbation σp (Eq. 7)",
                ),
                io.Combo.Input(
                    "solver", options=list(SOLVERS), default=d("neighbor.solver"), tooltip="rollout ODE solver"
                ),
                io.Int.Input("steps", default=d("neighbor.steps"), min=1, max=200, tooltip="rollout solver steps"),
                # No "control after generate" (the page adds one to any widget named seed): a new
                # seed on every queue would launch a new run every time.
                io.Int.Input(
                    "seed",
                    default=d("seed"),
                    min=0,
                    max=2**31 - 1,
                    control_after_generate=False,
                    tooltip="the run's seed",
                ),
                io.Int.Input(
                    "checkpoint_every",
                    default=d("checkpoint_every"),
                    min=1,
                    max=100000,
                    tooltip="iterations between checkpoints (each carries a LoRA)",
                ),
                io.Int.Input(
                    "eval_every",
                    default=d("eval.every"),
                    min=0,
                    max=100000,
                    tooltip="iterations between held-out evaluations (0: start and end only)",
                ),
                io.String.Input(
                    "device", default=d("device"), tooltip="auto, cpu, cuda or cuda:N: where the worker trains"
                ),
                io.String.Input(
                    "extra",
                    multiline=True,
                    default="",
                    tooltip="any other setting as YAML, e.g.\nneighbor: {anchors: 2}\neval: {seeds_per_prompt: 1}",
                ),
            ],
            outputs=[TRAIN_CONFIG.Output(display_name="config")],
        )

    @classmethod
    def validate_inputs(cls, **inputs) -> bool | str:
        extra = inputs.pop("extra", "")
        return validation(requests.build_config, inputs, extra)

    @classmethod
    def execute(cls, extra: str = "", **widgets) -> io.NodeOutput:
        return io.NodeOutput(requests.build_config(widgets, extra))
