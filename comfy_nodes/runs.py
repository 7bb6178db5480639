"""Launch Training and Run Status. ComfyUI never trains: a launch queues the run for a background
worker (started with ComfyUI's own Python) and returns at once with the run id."""

from __future__ import annotations

import threading
import time

from comfy_api.latest import io

from ..backend import actions
from . import requests
from .common import CATEGORY, PROMPTS, REWARDS, TRAIN_CONFIG, node_id, validation

ACTIVE = ("queued", "running")
PUSH_EVERY_S = 2.0
EVENT = "ngrpo.progress"


def model_choices() -> list[str]:
    """The embedded model first, then every model the registry found (ComfyUI's folders too)."""
    specs = [info.spec for info in actions.list_models() if info.available]
    return specs or ["tiny"]


def free_comfyui_memory() -> None:
    """Unload ComfyUI's models so the worker (and a compare) get the GPU memory."""
    import comfy.model_management as model_management

    model_management.unload_all_models()
    model_management.soft_empty_cache()


def check_model(model: str) -> None:
    # validate_run checks a whole config; with only the model set, the rest are the defaults,
    # which always pass, so the first problem it names is the model's. Memory is not judged here
    # (no budget): the defaults are not the run's settings; the launch plans it with the real ones.
    actions.validate_run(None, actions.RunRequest({"model": model}, gpu_memory_gb=float("inf")))


class LaunchTraining(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("LaunchTraining"),
            display_name="Launch Training",
            category=CATEGORY,
            description="Queue a training run for the background worker and return its id at once. "
            "ComfyUI's models are unloaded first so the worker gets the GPU memory.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=model_choices(),
                    tooltip="the embedded tiny model, or an SD3/FLUX model found in ComfyUI's model folders",
                ),
                PROMPTS.Input("prompts", tooltip="the prompts to train on (a Prompt Set node)"),
                REWARDS.Input("rewards", tooltip="what to maximise (one or more chained Reward nodes)"),
                TRAIN_CONFIG.Input("config", optional=True, tooltip="the algorithm's settings (default: the CLI's)"),
                io.String.Input("name", default="comfy-run", tooltip="run name; made unique with -2, -3, ..."),
            ],
            outputs=[io.Int.Output(display_name="run_id"), io.String.Output(display_name="run_name")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, model: str | None = None) -> bool | str:
        return True if model is None else validation(check_model, model)

    @classmethod
    def execute(cls, model: str, prompts, rewards: list[dict], name: str, config: dict | None = None) -> io.NodeOutput:
        request = actions.RunRequest(requests.run_config(model, prompts, rewards, config), name=name)
        actions.validate_run(None, request)  # every problem is reported before memory is touched
        free_comfyui_memory()
        queued = actions.queue_run(None, request)
        watch(queued.run_id)
        message = f"queued run {queued.run_id} ({queued.name}); " + (
            f"started worker pid {queued.worker_pid}" if queued.worker_pid else "a worker is already running"
        )
        return io.NodeOutput(queued.run_id, queued.name, ui={"text": [message], "ngrpo_run": [queued.run_id]})


def run_state(run_id: int):
    """(RunInfo, latest metrics, latest LoRA path or None) of a run."""
    detail = actions.show_run(None, run_id)
    loras = [c.lora_path for c in detail.checkpoints if c.lora_path is not None]
    return detail.info, detail.latest_metrics, str(loras[-1]) if loras else None


_WATCHED: set[int] = set()
_WATCHED_LOCK = threading.Lock()


def watch(run_id: int) -> None:
    """Push the run's progress to the browser (PromptServer messages) until it ends, from one
    background thread per run, so the graph need not be queued again to see it move."""
    with _WATCHED_LOCK:
        if run_id in _WATCHED:
            return
        _WATCHED.add(run_id)
    threading.Thread(target=_push_progress, args=(run_id,), name=f"ngrpo-progress-{run_id}", daemon=True).start()


def _push_progress(run_id: int) -> None:
    from server import PromptServer

    try:
        while True:
            info, latest, _ = run_state(run_id)
            PromptServer.instance.send_sync(EVENT, requests.progress_message(info, latest))
            if info.status not in ACTIVE:
                return
            time.sleep(PUSH_EVERY_S)
    finally:
        with _WATCHED_LOCK:
            _WATCHED.discard(run_id)


def wait_for_run(run_id: int) -> None:
    """Block until the run ends, showing its iterations on the node's progress bar; ComfyUI's
    Cancel button stops the waiting (not the run)."""
    import comfy.model_management as model_management
    from comfy.utils import ProgressBar

    bar = None
    while True:
        info = actions.get_run(None, run_id)
        if info.progress_total:
            bar = bar or ProgressBar(info.progress_total)
            bar.update_absolute(info.progress_step, info.progress_total)
        if info.status not in ACTIVE:
            return
        model_management.throw_exception_if_processing_interrupted()
        time.sleep(0.5)


class RunStatus(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("RunStatus"),
            display_name="Run Status",
            category=CATEGORY,
            description="A run's progress, latest rewards and gold metric, and its latest LoRA. It runs again "
            "every time the graph is queued; while the run trains, progress is also pushed to the browser.",
            inputs=[
                io.Int.Input("run_id", default=1, min=1, max=2**31 - 1, tooltip="the run (from Launch Training)"),
                io.Boolean.Input(
                    "wait",
                    default=False,
                    tooltip="wait until the run ends (its progress on this node) so nodes after this one see the "
                    "final LoRA; ComfyUI runs nothing else meanwhile, and Cancel stops only the waiting",
                ),
            ],
            outputs=[
                io.Int.Output(display_name="run_id"),
                io.String.Output(display_name="summary"),
                io.Float.Output(display_name="progress"),
                io.Float.Output(display_name="reward"),
                io.Float.Output(display_name="gold"),
                io.String.Output(display_name="lora_path"),
            ],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, **inputs) -> float:
        return time.time()  # a new stamp each time: the status is read again on every queue

    @classmethod
    def execute(cls, run_id: int, wait: bool) -> io.NodeOutput:
        if wait:
            wait_for_run(run_id)
        info, latest, lora = run_state(run_id)
        if info.status in ACTIVE:
            watch(run_id)
        summary = requests.status_text(info, latest, lora)
        if wait and info.status == "failed":
            raise actions.ActionError(summary)
        progress = info.progress_step / info.progress_total if info.progress_total else 0.0
        reward = latest.get("reward", (0, float("nan")))[1]
        gold = latest.get("eval/gold", (0, float("nan")))[1]
        # The page's script (web/ngrpo.js) shows the text and follows this run's progress messages.
        report = {"text": [summary], "ngrpo_run": [run_id], "ngrpo_status": [info.status]}
        return io.NodeOutput(run_id, summary, progress, reward, gold, lora or "", ui=report)
