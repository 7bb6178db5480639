"""Compare base vs checkpoints on the same noise, export LoRAs, score images."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from neighbor_grpo.backend import actions
from neighbor_grpo.backend.actions import ActionError, CompareRequest, ExportRequest, ScoreRequest

RED = "a red circle on a white background, top left"
BLUE = "a blue square on a yellow background, bottom right"


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_compare_uses_the_same_noise_in_every_column_and_scores_each_image(trained):
    home, run_id = trained
    request = CompareRequest(run_id, checkpoints=[1, 2], prompts=[RED, BLUE], seeds=[0, 1])
    seen = []
    result = actions.compare(home, request, progress=lambda fraction, message: seen.append(fraction))
    assert [c.label for c in result.columns] == ["base", "step 1", "step 2"]
    assert result.folder.parent == actions.get_run(home, run_id).folder / "compare"
    assert result.reward_names == ["shapes_fidelity", "shapes_render_match", "shapes_render_fit"]
    for column in result.columns:
        assert [(i.prompt, i.seed) for i in column.images] == [
            (RED, 0), (RED, 1), (BLUE, 0), (BLUE, 1),
        ]  # fmt: skip
        for name in result.reward_names:
            assert column.means[name] == pytest.approx(np.mean([i.scores[name] for i in column.images]))
        # The total is the run's objective: gold metrics are shown but weigh nothing.
        assert column.images[0].total == pytest.approx(column.images[0].scores["shapes_fidelity"])
    base, trained_column = result.columns[0], result.columns[2]
    assert Image.open(base.images[0].path).size == (128, 128)  # 32 px enlarged to stay visible
    assert np.abs(pixels(base.images[0].path) - pixels(trained_column.images[0].path)).max() > 0
    again = actions.compare(home, CompareRequest(run_id, checkpoints=[], prompts=[RED], seeds=[0]))
    assert [c.label for c in again.columns] == ["base", "step 2"]  # default: the newest LoRA
    assert np.array_equal(pixels(again.columns[0].images[0].path), pixels(base.images[0].path))
    assert seen[0] == 0.0 and seen[-1] == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"checkpoints": [9]}, r"no LoRA checkpoint at step\(s\) \[9\]; it has: \[1, 2\]"),
        ({"solver": "rk4"}, "unknown solver 'rk4'"),
        ({"steps": 0}, "steps must be in 1..200"),
        ({"seeds": list(range(65))}, "more than 64 images"),
        ({"rewards": ["beauty"]}, "unknown reward 'beauty'"),
        ({"run": "nope"}, "no run 'nope'"),
    ],
)
def test_a_bad_compare_is_refused_before_loading_anything(trained, change, message):
    home, run_id = trained
    request = CompareRequest(**{"run": run_id, "prompts": [RED], **change})
    with pytest.raises(ActionError, match=message):
        actions.compare(home, request)


def test_export_to_a_file_and_into_a_comfyui_loras_folder(trained, tmp_path):
    home, run_id = trained
    loras = actions.list_loras(home, run_id)
    assert [lora.step for lora in loras] == [1, 2] and all(lora.path.is_file() for lora in loras)
    out = actions.export_lora(home, ExportRequest(run_id, step=1, out=tmp_path / "mine.safetensors"))
    assert (out.path, out.step) == (tmp_path / "mine.safetensors", 1)
    assert hashlib.sha256(out.path.read_bytes()).hexdigest() == loras[0].sha256 == out.sha256
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    copied = actions.export_lora(home, ExportRequest(run_id, comfy_folder=comfy))
    assert copied.path.parent == comfy / "models" / "loras" and copied.step == 2
    assert copied.path.name == "small-step2.safetensors"
    with pytest.raises(ActionError, match="no ComfyUI loras folder"):
        actions.export_lora(home, ExportRequest(run_id, comfy_folder=tmp_path / "nothing"))


def test_scoring_images_reports_each_reward_and_the_weighted_total(trained, tmp_path):
    home, run_id = trained
    image = actions.run_gallery(home, run_id).groups[0].images[0].path
    result = actions.score_images(ScoreRequest([image, image], [RED], ["shapes_fidelity", "colourfulness:0.5"]))
    assert result.keys == ["shapes_fidelity", "colourfulness"]
    first = result.images[0]
    assert first.total == pytest.approx(first.scores["shapes_fidelity"] + 0.5 * first.scores["colourfulness"])
    with pytest.raises(ActionError, match="no such image file"):
        actions.score_images(ScoreRequest([tmp_path / "x.png"], ["p"], ["shapes_fidelity"]))
    with pytest.raises(ActionError, match="one prompt for all images"):
        actions.score_images(ScoreRequest([image, image, image], ["a", "b"], ["shapes_fidelity"]))


def test_a_compare_on_a_gpu_holds_the_device_lock_a_training_worker_holds(tmp_path):
    import torch

    from neighbor_grpo.backend.actions.comparing import _device_lock
    from neighbor_grpo.storage.workers import WorkerLock, lock_file

    worker = WorkerLock(lock_file(tmp_path, None))  # the default worker, training on the first GPU
    assert worker.acquire()
    with (
        pytest.raises(ActionError, match=r"a run is training on cuda:0.*compete for its GPU memory"),
        _device_lock(tmp_path, torch.device("cuda:0")),
    ):
        pass
    worker.release()
    with _device_lock(tmp_path, torch.device("cuda")):
        assert not WorkerLock(lock_file(tmp_path, None)).acquire()  # a worker starting now waits
        assert not WorkerLock(lock_file(tmp_path, "cuda:0")).acquire()
    assert WorkerLock(lock_file(tmp_path, "cuda:0")).acquire()
    with _device_lock(tmp_path, torch.device("cpu")):  # no GPU memory to share: no lock
        assert WorkerLock(lock_file(tmp_path, None)).acquire()
