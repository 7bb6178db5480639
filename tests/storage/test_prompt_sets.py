"""Named prompt sets in the registry, and how a queued run freezes the prompts it will train on."""

from __future__ import annotations

import pytest

from neighbor_grpo.storage.prompt_sets import get_prompt_set, list_prompt_sets, save_prompt_set
from neighbor_grpo.storage.registry import RegistryError
from neighbor_grpo.storage.runs import get_run


def test_prompt_sets_are_saved_replaced_and_listed(home):
    save_prompt_set(home, "cats", ["a cat", "  ", "a black cat "])
    assert get_prompt_set(home, "cats") == ["a cat", "a black cat"]
    save_prompt_set(home, "cats", ["a tabby cat"], description="v2")
    assert list_prompt_sets(home) == {"cats": 1}
    with pytest.raises(RegistryError, match="at least one"):
        save_prompt_set(home, "empty", [" "])
    with pytest.raises(RegistryError, match="no prompt set"):
        get_prompt_set(home, "dogs")


def test_a_queued_run_freezes_registry_sets_and_files_but_keeps_built_in_names(home, queue, tmp_path):
    save_prompt_set(home, "cats", ["a cat"])
    listed = tmp_path / "prompts.txt"
    listed.write_text("# mine\na dog\n")
    run = get_run(home, queue(prompts="cats", eval={"prompts": str(listed)}))
    assert (run.prompt_set, run.config["prompts"], run.config["eval"]["prompts"]) == ("cats", ["a cat"], ["a dog"])
    save_prompt_set(home, "cats", ["changed later"])
    assert get_run(home, run.id).config["prompts"] == ["a cat"]
    assert get_run(home, queue()).config["prompts"] == "shapes:train"
    with pytest.raises(ValueError, match="unknown prompt set"):
        queue(prompts="no-such-set")
