"""What front ends do with runs: queue (validated), list, cancel, resume, control, delete, export."""

from __future__ import annotations

import hashlib
import os

import pytest

from neighbor_grpo.backend.records import CheckpointRecord
from neighbor_grpo.storage.history import list_checkpoints
from neighbor_grpo.storage.registry import RegistryError, open_registry
from neighbor_grpo.storage.reporter import RegistryReporter
from neighbor_grpo.storage.runs import (
    RunNotFound,
    cancel_run,
    delete_run,
    export_lora,
    get_run,
    list_runs,
    request_sample,
    request_save,
    resume_run,
)

from .conftest import running_values, set_run


def test_queue_validates_and_stores_the_normalised_config(home, queue):
    run_id = queue("first", iterations=7, rewards=[{"name": "shapes_fidelity", "weight": 2}])
    run = get_run(home, run_id)
    assert (run.name, run.status, run.model, run.algorithm, run.progress_total) == (
        "first", "queued", "tiny", "neighbor_grpo", 7,
    )  # fmt: skip
    assert run.rewards == [{"name": "shapes_fidelity", "weight": 2.0, "options": {}}]
    assert run.config["group_size"] == 12  # defaults filled in: the worker trains exactly this
    assert run.folder.is_dir() and run.folder.parent == home / "runs"


def test_names_are_unique_and_runs_resolve_by_id_or_name(home, queue):
    ids = [queue("same"), queue("same"), queue("same")]
    assert [get_run(home, i).name for i in ids] == ["same", "same-2", "same-3"]
    assert get_run(home, "same-2").id == ids[1]
    assert get_run(home, str(ids[2])).id == ids[2]
    assert get_run(home, ids[1]).config["name"] == "same-2"
    assert [run.id for run in list_runs(home)] == ids[::-1]  # newest first
    with pytest.raises(RunNotFound, match="runs list"):
        get_run(home, "nope")


def test_cancel_queued_at_once_and_running_by_flag(home, queue):
    queued, running, done = queue("q"), queue("r"), queue("d")
    assert cancel_run(home, queued).status == "cancelled"
    set_run(home, running, **running_values(os.getpid()))
    info = cancel_run(home, running)
    assert (info.status, info.cancel_requested) == ("running", True)
    set_run(home, done, status="finished")
    with pytest.raises(RegistryError, match="already finished"):
        cancel_run(home, done)


def test_resume_requeues_only_stopped_runs(home, queue):
    run_id = queue()
    for status in ("interrupted", "failed", "cancelled"):
        set_run(home, run_id, status=status, error="boom", cancel_requested=True)
        info = resume_run(home, run_id)
        assert (info.status, info.error, info.cancel_requested) == ("queued", None, False)
    with pytest.raises(RegistryError, match="only interrupted"):
        resume_run(home, run_id)
    set_run(home, run_id, status="finished")
    with pytest.raises(RegistryError, match="queue a new run"):
        resume_run(home, run_id)


def test_save_and_sample_requests_need_a_running_run(home, queue):
    run_id = queue()
    with pytest.raises(RegistryError, match="not running"):
        request_save(home, run_id)
    set_run(home, run_id, **running_values(os.getpid()))
    request_save(home, run_id)
    request_sample(home, run_id)
    flags = RegistryReporter(open_registry(home), run_id).poll()
    assert (flags.save_now, flags.sample_now, flags.cancel) == (True, True, False)


def test_delete_removes_rows_and_folder_but_never_a_running_run(home, queue):
    keep, gone = queue("keep"), queue("gone")
    folder = get_run(home, gone).folder
    (folder / "samples").mkdir()
    (folder / "samples" / "0.png").write_bytes(b"png")
    RegistryReporter(open_registry(home), gone).metrics(1, {"reward": 1.0})
    set_run(home, keep, **running_values(os.getpid()))
    with pytest.raises(RegistryError, match="cancel it first"):
        delete_run(home, keep)
    delete_run(home, "gone")
    assert not folder.exists()
    assert [run.name for run in list_runs(home)] == ["keep"]


def write_checkpoint(home, run_id: int, step: int, payload: bytes) -> None:
    folder = get_run(home, run_id).folder / "checkpoints" / f"step-{step:06d}"
    folder.mkdir(parents=True)
    (folder / "lora.safetensors").write_bytes(payload)
    record = CheckpointRecord(
        step=step,
        folder=f"checkpoints/step-{step:06d}",
        files={"lora.safetensors": hashlib.sha256(payload).hexdigest()},
        lora_path=f"checkpoints/step-{step:06d}/lora.safetensors",
    )
    RegistryReporter(open_registry(home), run_id).checkpoint(record)


def test_export_copies_the_lora_of_a_checkpoint(home, queue, tmp_path):
    run_id = queue("exp")
    write_checkpoint(home, run_id, 3, b"three")
    write_checkpoint(home, run_id, 6, b"six")
    assert export_lora(home, "exp", out=tmp_path / "a.safetensors").read_bytes() == b"six"
    assert export_lora(home, run_id, step=3, out=tmp_path / "b.safetensors").read_bytes() == b"three"
    into_folder = export_lora(home, run_id, out=tmp_path)  # e.g. ComfyUI's loras folder
    assert into_folder == tmp_path / "exp-step6.safetensors"
    with pytest.raises(RunNotFound, match="step 4"):
        export_lora(home, run_id, step=4, out=tmp_path / "c.safetensors")


def test_export_refuses_a_damaged_lora(home, queue, tmp_path):
    run_id = queue()
    write_checkpoint(home, run_id, 2, b"good")
    (list_checkpoints(home, run_id)[0].lora_path).write_bytes(b"damaged")
    with pytest.raises(RegistryError, match="sha256"):
        export_lora(home, run_id, out=tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
