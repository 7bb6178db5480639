"""The actions layer: everything a user can do, as plain functions every front end calls.

The CLI (`backend/commands`), the dashboard (`ui/`, `app.py`) and the ComfyUI nodes translate
their inputs into these calls and show what comes back. Nothing here imports a front end, and
nothing here trains: queueing hands a run to the background worker (`ngrpo worker`), the only
process that trains.

Conventions
    `home` is the registry folder (a path, or None for $NGRPO_HOME / ComfyUI's user folder / the
    user data folder, see storage/home.py). `run` is a run id or name. Every function raises
    `ActionError` (a ValueError) whose message names the problem and the fix; show it as is.
    Results are frozen dataclasses; paths in them are absolute and inside the home folder.

Choosing (catalog.py, prompts.py, launch.py)
    list_models() -> [ModelInfo(spec, name, description, available, detail)]
    list_rewards() -> [RewardInfo(name, version, description, options, needs_weights, available, files)]
    plugin_status() -> str                      whether reward plugins (user code) may load, and how to opt in
    list_prompt_sets(home) -> [PromptSetInfo(name, source, count, preview)]
    parse_prompt_file(path) -> [str]            .txt / .csv ("prompt" column) / .jsonl; empty → ActionError
    save_prompts(home, name, prompts) -> int    a named set in the registry
    list_presets() -> [Preset(name, description, config)];  load_preset(name) -> config dict
    estimate_iteration_time(home, config) -> Estimate(seconds_per_iteration, total_seconds, basis) | None
    estimate_memory(config, budget_gb=None) -> MemoryEstimate(parts, peak, budget, suggestions) | None

Launching (launch.py)
    validate_run(home, RunRequest(config, name=None)) -> ValidRun   checks all, writes nothing
    queue_run(home, RunRequest(config, name=None, start_worker=True))
        -> QueuedRun(run_id, name, folder, worker_pid, worker_alive)
        Checked before anything is written: settings (types, ranges), the model's files, prompts
        (non-empty), every reward and gold metric (known, options valid, weights files present).
    ensure_worker_alive(home) -> pid | None

Watching and controlling (runs.py)
    list_runs(home, status=None, limit=200) -> [RunRow(id, name, status, model, algorithm, step,
        total, eta_s, best_reward, gold, created_at, note)]   newest first; dead workers settled
    any_active(home) -> bool                     poll only while this holds
    run_pulse(home, run) -> RunPulse(id, status, progress_step, progress_total, cancel_requested,
        error, metrics=(rows, newest step), samples=(rows, newest step))   cheap: reload only on change
    runs_pulse(home, limit=200) -> RunsPulse(rows, active_metrics, active_runs; .active)   same, for the table
    get_run(home, run) -> RunInfo;  show_run(home, run) -> RunDetail(info, latest_metrics, checkpoints, eta_s)
    cancel_run / delete_run / request_checkpoint / request_samples (home, run) -> RunInfo
    resume_run(home, run, start_worker=True) -> (RunInfo, worker pid | None)

Reading a run (history.py)
    run_curves(home, run, names=None, max_points=300) -> {metric: [(step, value)]}  (SQL-downsampled)
    run_gallery(home, run, step=None) -> Gallery(step, steps, groups=[SampleGroup(prompt,
        images=[SampleImage(path, seed, scores)])])   one group = one prompt on several seeds
    run_infos(home, status=None) -> [RunInfo]   full records, for scripts
    run_config(home, run) -> dict;  run_error(home, run) -> str | None (the traceback if failed)

Comparing and scoring (comparing.py, scoring.py)
    compare(home, CompareRequest(run, checkpoints=[], prompts=[], seeds=[0], solver=None, steps=None,
        rewards=[], device=None, include_base=True), progress=None)
        -> CompareResult(folder, columns=[CompareColumn(label, step, images=[CompareImage(path,
           prompt, seed, scores, total)], means)], reward_names, prompts, seeds, solver, steps)
        Same prompts and initial noise in every column. On a CUDA device it holds that device's
        worker lock while a model is loaded, so it never competes with training for GPU memory.
    score_images(ScoreRequest(images, prompts, rewards, device="cpu"))
        -> ScoreResult(keys, rewards, weights, images=[ImageScore(image, prompt, scores, total)])

Exporting (export.py)
    list_loras(home, run) -> [LoraFile(step, path, sha256)]     files in the run folder
    export_lora(home, ExportRequest(run, step=None, out=None, comfy_folder=None))
        -> ExportResult(path, step, sha256)     copied and checked against the recorded hash
    comfy_loras_folder(folder) -> Path          a ComfyUI root, its models/ or models/loras
"""

import importlib

# Imported on first use (PEP 562): listing runs must not pay for torch, which only sampling,
# scoring and queueing need.
_WHERE = {
    "ActionError": ".errors",
    "CompareColumn": ".comparing",
    "CompareImage": ".comparing",
    "CompareRequest": ".comparing",
    "CompareResult": ".comparing",
    "Estimate": ".estimate",
    "ExportRequest": ".export",
    "ExportResult": ".export",
    "Gallery": ".history",
    "ImageScore": ".scoring",
    "LoraFile": ".export",
    "ModelInfo": "..models.registry",
    "Preset": ".launch",
    "PromptSetInfo": ".catalog",
    "QueuedRun": ".launch",
    "RewardInfo": ".catalog",
    "RunDetail": ".runs",
    "RunRequest": ".launch",
    "RunPulse": ".runs",
    "RunRow": ".runs",
    "RunsPulse": ".runs",
    "SampleGroup": ".history",
    "SampleImage": ".history",
    "ScoreRequest": ".scoring",
    "ScoreResult": ".scoring",
    "ValidRun": ".launch",
    "any_active": ".runs",
    "cancel_run": ".runs",
    "comfy_loras_folder": ".export",
    "compare": ".comparing",
    "delete_run": ".runs",
    "ensure_worker_alive": ".launch",
    "estimate_iteration_time": ".estimate",
    "estimate_memory": ".estimate",
    "export_lora": ".export",
    "get_run": ".runs",
    "list_loras": ".export",
    "list_models": ".catalog",
    "list_presets": ".launch",
    "list_prompt_sets": ".catalog",
    "list_rewards": ".catalog",
    "list_runs": ".runs",
    "load_preset": ".launch",
    "parse_prompt_file": ".prompts",
    "plugin_status": ".catalog",
    "queue_run": ".launch",
    "request_checkpoint": ".runs",
    "request_samples": ".runs",
    "resume_run": ".runs",
    "run_config": ".history",
    "run_curves": ".history",
    "run_error": ".history",
    "run_gallery": ".history",
    "run_infos": ".runs",
    "run_pulse": ".runs",
    "runs_pulse": ".runs",
    "save_prompts": ".prompts",
    "score_images": ".scoring",
    "show_run": ".runs",
    "validate_run": ".launch",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_WHERE[name], __name__)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ActionError", "CompareColumn", "CompareImage", "CompareRequest", "CompareResult", "Estimate",
    "ExportRequest", "ExportResult", "Gallery", "ImageScore", "LoraFile", "ModelInfo", "Preset",
    "PromptSetInfo", "QueuedRun", "RewardInfo", "RunDetail", "RunPulse", "RunRequest", "RunRow", "RunsPulse",
    "SampleGroup", "SampleImage", "ScoreRequest", "ScoreResult", "ValidRun", "any_active", "cancel_run",
    "comfy_loras_folder", "compare", "delete_run", "ensure_worker_alive", "estimate_iteration_time", "estimate_memory",
    "export_lora", "get_run", "list_loras", "list_models", "list_presets", "list_prompt_sets",
    "list_rewards", "list_runs", "load_preset", "parse_prompt_file", "plugin_status", "queue_run",
    "request_checkpoint", "request_samples", "resume_run", "run_config", "run_curves", "run_error", "run_gallery",
    "run_infos",
    "run_pulse", "runs_pulse", "save_prompts", "score_images", "show_run", "validate_run",
]  # fmt: skip
