"""The nodes' widget logic, without ComfyUI: what each widget value turns into, and the messages a
user sees for bad ones."""

from __future__ import annotations

import pytest

from neighbor_grpo.backend.actions import ActionError
from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.comfy_nodes import requests


def test_typed_prompts_are_one_per_line_and_an_empty_set_is_refused():
    assert requests.prompt_source(requests.TEXT_SOURCE, " a cat \n\n a dog\n", "") == ["a cat", "a dog"]
    with pytest.raises(ActionError, match="prompt set is empty"):
        requests.prompt_source(requests.TEXT_SOURCE, " \n \n", "")
    with pytest.raises(ActionError, match="no prompt file given"):
        requests.prompt_source(requests.FILE_SOURCE, "ignored", "  ")
    assert requests.prompt_source("shapes:train", "ignored", "") == "shapes:train"


def test_rewards_chain_in_order_with_their_options():
    first = requests.add_reward(None, "shapes_fidelity", 1.0, "")
    both = requests.add_reward(first, "brightness", 0.5, "target=0.25")
    assert both == [
        {"name": "shapes_fidelity", "weight": 1.0, "options": {}},
        {"name": "brightness", "weight": 0.5, "options": {"target": 0.25}},
    ]
    assert first == [{"name": "shapes_fidelity", "weight": 1.0, "options": {}}], "the earlier list is not changed"
    with pytest.raises(ActionError, match="not key=value"):
        requests.add_reward(None, "brightness", 1.0, "target")


def test_config_widgets_default_to_the_cli_defaults():
    defaults = TrainConfig().to_dict()
    widgets = {widget: requests.config_default(dotted) for widget, dotted in requests.CONFIG_FIELDS}
    built = TrainConfig.from_dict({**requests.build_config(widgets), "name": defaults["name"]}).to_dict()
    assert built == defaults


def test_extra_settings_merge_and_typos_are_named():
    config = requests.build_config({"iterations": 5}, "neighbor: {anchors: 2}\neval: {seeds_per_prompt: 1}")
    assert (
        config["iterations"] == 5 and config["neighbor"] == {"anchors": 2} and config["eval"]["seeds_per_prompt"] == 1
    )
    with pytest.raises(ValueError, match=r"neighbor\.anchorz"):
        requests.build_config({}, "neighbor: {anchorz: 2}")
    with pytest.raises(ActionError, match="not valid YAML"):
        requests.build_config({}, "neighbor: {anchors: 2")
    with pytest.raises(ValueError, match="iterations"):
        requests.build_config({"iterations": 0})


def test_the_queued_config_is_a_copy_with_model_prompts_and_rewards():
    config = {"iterations": 3, "neighbor": {"anchors": 2}}
    rewards = [{"name": "brightness", "weight": 1.0, "options": {}}]
    queued = requests.run_config("tiny", ["a cat"], rewards, config)
    queued["neighbor"]["anchors"] = 4
    assert config["neighbor"]["anchors"] == 2, "ComfyUI caches node outputs: never change them"
    assert queued["model"] == "tiny" and queued["prompts"] == ["a cat"] and queued["rewards"] == rewards


def test_seeds_parse_and_bad_ones_are_named():
    assert requests.parse_seeds("0, 1 2,3") == [0, 1, 2, 3]
    with pytest.raises(ActionError, match="whole numbers"):
        requests.parse_seeds("0, x")
    with pytest.raises(ActionError, match="at least one seed"):
        requests.parse_seeds(" , ")
