"""Checkpoints survive crashes: a damaged newest checkpoint falls back to the previous intact one,
a re-save never deletes the old folder first, and a full disk fails with a clear error while
leaving the previous checkpoint intact."""

from __future__ import annotations

import errno
import random

import pytest
import torch

from neighbor_grpo.backend.training import checkpoint as ckpt
from neighbor_grpo.backend.training.reporting import JsonlReporter, read_jsonl
from neighbor_grpo.backend.training.trainer import Trainer

from .test_trainer import final_weights, small_config


def _save(root, step, value=0.0):
    weights = {"w": torch.full((4,), float(value))}
    param = torch.nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.AdamW([param])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)
    rng = ckpt.RngStates(random.Random(0), torch.Generator().manual_seed(0))
    return ckpt.save_checkpoint(root, step, weights, optimizer.state_dict(), scheduler, rng, {"value": value})


def test_a_checkpoint_carries_a_manifest_that_verifies(tmp_path):
    folder = _save(tmp_path, 1)
    assert (folder / ckpt.MANIFEST).is_file()
    assert ckpt.verify_checkpoint(folder) is None


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    first, second = _save(tmp_path, 1), _save(tmp_path, 2)
    data = (second / ckpt.OPTIMIZER).read_bytes()
    (second / ckpt.OPTIMIZER).write_bytes(data[: len(data) // 2])  # a torn write
    messages = []
    assert ckpt.latest_intact_checkpoint(tmp_path, log=messages.append) == first
    assert "optimizer.pt does not match its recorded sha256" in messages[0]
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [1]
    assert list(tmp_path.glob(".corrupt-step-000002-*"))  # kept for inspection, never resumed from


def test_a_resave_of_the_same_step_keeps_the_old_folder_until_the_new_one_is_whole(tmp_path, monkeypatch):
    folder = _save(tmp_path, 2, value=1.0)

    def fail(*args, **kwargs):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(ckpt.torch, "save", fail)
    with pytest.raises(ckpt.CheckpointError, match=r"writing the checkpoint of step 2 .* failed"):
        _save(tmp_path, 2, value=2.0)
    assert ckpt.verify_checkpoint(folder) is None
    assert [p for _, p in ckpt.list_checkpoints(tmp_path)] == [folder]
    assert not list(tmp_path.glob(".step-*"))


def test_a_crash_between_the_two_renames_of_a_resave_is_undone(tmp_path):
    folder = _save(tmp_path, 2)
    folder.rename(tmp_path / ".step-000002.old-4242")  # the new folder never arrived
    assert [p for _, p in ckpt.list_checkpoints(tmp_path)] == [folder]
    assert ckpt.verify_checkpoint(folder) is None


def test_a_full_disk_fails_clearly_and_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    previous = _save(tmp_path, 1)
    real_save = torch.save

    def disk_full(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", disk_full)
    with pytest.raises(ckpt.CheckpointError, match=r"disk full .* step 2 .*previous checkpoint \(step 1\) is intact"):
        _save(tmp_path, 2)
    assert [p for _, p in ckpt.list_checkpoints(tmp_path)] == [previous]
    assert ckpt.verify_checkpoint(previous) is None
    assert not list(tmp_path.glob(".step-*"))


@pytest.mark.slow
def test_training_resumes_exactly_from_the_previous_checkpoint_when_the_newest_is_torn(model_dir, tmp_path):
    straight = tmp_path / "straight"
    Trainer(small_config(model_dir), straight, JsonlReporter(straight)).run()
    torn = tmp_path / "torn"
    Trainer(small_config(model_dir, iterations=6), torn, JsonlReporter(torn)).run()
    newest = ckpt.folder_for(torn / "checkpoints", 6)
    (newest / ckpt.WEIGHTS).write_bytes(b"\0" * 64)  # damaged after the fact
    # Asked to train further: it must restart from step 3, not crash and not trust step 6.
    outcome = Trainer(small_config(model_dir), torn, JsonlReporter(torn)).run()
    assert (outcome.status, outcome.step) == ("finished", 6)
    a, b = final_weights(straight), final_weights(torn)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [row["step"] for row in read_jsonl(torn / "metrics.jsonl") if "reward" in row]
    assert steps == [1, 2, 3, 4, 5, 6]  # steps 4–6 once each: the torn run's rows were rewound
