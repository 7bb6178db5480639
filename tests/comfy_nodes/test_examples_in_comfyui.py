"""The pack inside a real ComfyUI: every node loads, every example workflow runs (the SD3 one, which
needs the user's model files, fails only for lack of them), bad inputs are refused before anything
is queued, progress reaches the browser, and the JSON routes answer."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request

import pytest
import torch
from safetensors.torch import save_file

pytestmark = pytest.mark.slow
NODE_IDS = {
    "NGRPO_PromptSet", "NGRPO_Reward", "NGRPO_TrainingConfig", "NGRPO_LaunchTraining", "NGRPO_RunStatus",
    "NGRPO_CompareBaseVsAligned", "NGRPO_ScoreImages", "NGRPO_ExportLora",
}  # fmt: skip


def post(comfyui, path: str, payload: dict | None = None) -> tuple[int, dict]:
    """POST `path` (with `payload` as JSON, or no body); (HTTP status, answer), without raising on
    a refusal (the harness's own post raises)."""
    data = b"" if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(comfyui.url + path, data=data, method="POST")
    if payload is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def submit(comfyui, prompt: dict) -> tuple[int, dict]:
    return post(comfyui, "/prompt", {"prompt": prompt})


class BrowserMessages:
    """What the page would receive on ComfyUI's websocket, collected in a thread."""

    def __init__(self, url: str):
        self.messages: list[dict] = []
        self.ready = threading.Event()
        self._stop = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen(url)), daemon=True)
        self._thread.start()
        assert self.ready.wait(30), "could not open ComfyUI's websocket"

    async def _listen(self, url: str) -> None:
        import aiohttp

        self._stop = asyncio.Event()
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url.replace("http", "ws") + "/ws?clientId=t") as ws,
        ):
            self.ready.set()
            while not self._stop.is_set():
                try:
                    message = await ws.receive(timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append(json.loads(message.data))
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return

    def of_type(self, kind: str) -> list[dict]:
        return [m["data"] for m in self.messages if m.get("type") == kind]

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        self._thread.join(10)


def test_every_node_loads_with_a_tooltip_on_every_input(comfyui):
    ours = {name: info for name, info in comfyui.object_info.items() if name.startswith("NGRPO_")}
    assert set(ours) == NODE_IDS
    for name, info in ours.items():
        assert info["category"] == "Neighbor GRPO"
        for section in ("required", "optional"):
            for input_name, spec in info["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_ui_examples_convert_to_their_api_twins(comfyui, workflow_format):
    for name in workflow_format.EXAMPLES:
        ui = json.loads((workflow_format.UI_DIR / f"{name}.json").read_text(encoding="utf-8"))
        converted = workflow_format.ui_to_api(ui, comfyui.object_info)
        assert converted == workflow_format.without_meta(workflow_format.load_api(name)), (
            f"example_workflows/{name}.json is stale: run python tests/comfy_nodes/workflow_format.py"
        )
    served = comfyui.get("/api/workflow_templates")
    assert sorted(served["neighbor_grpo"]) == sorted(workflow_format.EXAMPLES), "ComfyUI's template browser lists them"


def test_bad_inputs_are_refused_before_anything_is_queued(comfyui, comfyui_base, workflow_format):
    example = workflow_format.load_api("tiny_train_status_compare")
    runs_before = comfyui.get("/ngrpo/runs")

    empty = json.loads(json.dumps(example))
    empty["prompts"]["inputs"].update(source="text below", text=" \n ")
    status, answer = submit(comfyui, empty)
    assert status == 400 and "the prompt set is empty" in json.dumps(answer["node_errors"])

    unknown = json.loads(json.dumps(example))
    unknown["fidelity"]["inputs"]["name"] = "no_such_reward"
    status, answer = submit(comfyui, unknown)
    assert status == 400 and "no_such_reward" in json.dumps(answer["node_errors"])

    model = json.loads(json.dumps(example))
    model["launch"]["inputs"]["model"] = "tiny:/no/such/folder"
    status, answer = submit(comfyui, model)
    assert status == 400 and "/no/such/folder" in json.dumps(answer["node_errors"])

    wrong_kind = comfyui_base / "models" / "diffusion_models" / "not_a_flow_model.safetensors"
    save_file({"foo.weight": torch.zeros(2, 2)}, str(wrong_kind))
    model["launch"]["inputs"]["model"] = str(wrong_kind)
    status, answer = submit(comfyui, model)
    assert status == 400 and "not an SD3/SD3.5 or FLUX.1 diffusion model" in json.dumps(answer["node_errors"])
    assert (
        str(wrong_kind)
        not in comfyui.get("/object_info/NGRPO_LaunchTraining")["NGRPO_LaunchTraining"]["input"]["required"]["model"][0]
    ), "the model list offers only models it can train"

    typo = json.loads(json.dumps(example))
    typo["config"]["inputs"]["extra"] = "neighbor: {anchorz: 2}"
    status, answer = submit(comfyui, typo)
    assert status == 400 and "neighbor.anchorz" in json.dumps(answer["node_errors"])

    assert comfyui.get("/ngrpo/runs") == runs_before


def test_embedded_model_example_trains_shows_progress_compares_and_exports(
    comfyui, comfyui_base, workflow_format, clean_log
):
    browser = BrowserMessages(comfyui.url)
    try:
        entry = comfyui.run_prompt(workflow_format.load_api("tiny_train_status_compare"), timeout=900)
    finally:
        browser.close()
    outputs = entry["outputs"]  # keyed by the API file's node keys
    launched = outputs["launch"]["text"][0]
    assert launched.startswith("queued run ")
    summary = outputs["status"]["text"][0]
    assert ": finished, iteration 6/6" in summary and "held-out reward" in summary and "latest LoRA:" in summary
    assert len(outputs["preview"]["images"]) == 8, "4 held-out prompts × 2 seeds, base and aligned side by side"
    assert " vs step 6 " in outputs["compare"]["text"][0]
    assert "colourfulness" in outputs["score"]["text"][0]

    exported = outputs["export"]["text"][0]
    lora_name = exported.split(" as ", 1)[1].split(" ")[0]
    assert (comfyui_base / "models" / "loras" / lora_name).is_file()
    listed = comfyui.get("/object_info/LoraLoader")["LoraLoader"]["input"]["required"]["lora_name"][0]
    assert lora_name in listed, "the stock LoraLoader lists the exported LoRA"

    progress = browser.of_type("ngrpo.progress")
    assert progress and {"run_id", "status", "step", "total", "metrics"} <= set(progress[-1])
    assert progress[-1]["status"] == "finished" or any(p["status"] == "running" for p in progress)

    run_id = int(launched.split()[2])
    table = comfyui.get("/ngrpo/runs")
    assert [row["id"] for row in table if row["name"].startswith("comfy-example")] == [run_id]
    detail = comfyui.get(f"/api/ngrpo/runs/{run_id}")
    assert detail["run"]["status"] == "finished" and detail["checkpoints"][-1]["step"] == 6
    status, answer = post(comfyui, f"/ngrpo/runs/{run_id}/cancel")
    assert status == 400 and "already finished" in answer["error"]


def test_run_status_runs_on_every_queue_and_cancel_works(comfyui, comfyui_home):
    from neighbor_grpo.backend import actions

    config = {"name": "never-started", "iterations": 2}
    queued = actions.queue_run(comfyui_home, actions.RunRequest(config, start_worker=False))
    graph = {"status": {"class_type": "NGRPO_RunStatus", "inputs": {"run_id": queued.run_id, "wait": False}}}
    for _ in range(2):
        entry = comfyui.run_prompt(graph)
        cached = [node for m in entry["status"]["messages"] if m[0] == "execution_cached" for node in m[1]["nodes"]]
        assert "status" not in cached, "Run Status must read the registry again, not reuse its output"
        assert f"run {queued.run_id} (never-started): queued" in entry["outputs"]["status"]["text"][0]

    status, answer = post(comfyui, f"/ngrpo/runs/{queued.run_id}/cancel")
    assert status == 200 and answer["status"] == "cancelled"
    status, answer = post(comfyui, "/ngrpo/runs/999999/cancel")
    assert status == 400 and "no run 999999" in answer["error"]


def test_sd3_example_is_valid_but_for_the_users_model_files(comfyui, workflow_format):
    status, answer = submit(comfyui, workflow_format.load_api("sd3_lora_vs_base"))
    assert status == 400
    problems = {
        (node, error["extra_info"]["input_name"], error["type"])
        for node, report in answer["node_errors"].items()
        for error in report["errors"]
    }
    assert problems == {
        ("checkpoint", "ckpt_name", "value_not_in_list"),
        ("lora", "lora_name", "value_not_in_list"),
    }, problems
