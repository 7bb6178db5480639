"""Queueing through the actions layer: everything is checked before anything is written."""

from __future__ import annotations

import pytest

from neighbor_grpo.backend import actions
from neighbor_grpo.backend.actions import ActionError, RunRequest, queue_run, validate_run

from .conftest import small_config


def nothing_queued(home) -> bool:
    return actions.list_runs(home) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"group_size": 1}, r"group_size must be in \[2, 4096\], got 1"),
        ({"itterations": 3}, "unknown setting"),
        ({"model": "tiny:/no/such/folder"}, "no tiny model at /no/such/folder"),
        ({"model": "sdxl"}, "unknown model 'sdxl'"),
        ({"prompts": []}, "holds no prompts"),
        ({"prompts": "no-such-set"}, "unknown prompt set"),
        ({"rewards": [{"name": "beauty"}]}, "unknown reward 'beauty'"),
        ({"rewards": [{"name": "clip", "options": {"path": "/missing/clip.safetensors"}}]}, "clip"),
        ({"eval": {"gold": [{"name": "nope"}]}}, "unknown reward 'nope'"),
        ({"neighbor": {"sigma_p": 1.5}}, "neighbor.sigma_p must be in"),
    ],
)
def test_a_bad_request_is_refused_with_the_problem_named_and_nothing_written(home, model_dir, change, message):
    with pytest.raises(ActionError, match=message):
        queue_run(home, RunRequest(small_config(model_dir, **change), start_worker=False))
    assert nothing_queued(home)


def test_an_empty_name_is_refused(home, model_dir):
    with pytest.raises(ActionError, match="name is empty"):
        validate_run(home, RunRequest(small_config(model_dir), name="  "))


def test_queueing_stores_the_full_config_and_freezes_prompt_files(home, model_dir, tmp_path):
    prompts = tmp_path / "mine.csv"
    prompts.write_text("prompt,weight\na red circle,1\na blue square,2\n")
    queued = queue_run(home, RunRequest(small_config(model_dir, prompts=str(prompts)), name="mine", start_worker=False))
    run = actions.get_run(home, queued.run_id)
    assert (run.name, run.status, queued.worker_pid) == ("mine", "queued", None)
    assert run.config["prompts"] == ["a red circle", "a blue square"]
    assert run.config["eval"]["prompts"] == "shapes:test"  # built-in names stay names
    assert run.config["optimizer"]["betas"] == [0.9, 0.999]  # defaults filled in
    assert queued.folder.is_dir()


def test_queueing_makes_sure_a_worker_is_alive(home, model_dir, monkeypatch):
    started = []
    monkeypatch.setattr("neighbor_grpo.backend.actions.launch.ensure_worker", lambda h: started.append(h) or 4242)
    queued = queue_run(home, RunRequest(small_config(model_dir)))
    assert (queued.worker_pid, queued.worker_alive, started) == (4242, True, [home])


def test_presets_are_the_shipped_configs_and_queue_as_they_are(home):
    presets = {preset.name: preset for preset in actions.list_presets()}
    assert {"tiny_neighbor_grpo", "tiny_sde_grpo"} <= set(presets)
    assert "Neighbor GRPO" in presets["tiny_neighbor_grpo"].description
    config = actions.load_preset("tiny_neighbor_grpo")
    assert validate_run(home, RunRequest(config)).config.algorithm == "neighbor_grpo"
    with pytest.raises(ActionError, match="no preset 'x'"):
        actions.load_preset("x")
