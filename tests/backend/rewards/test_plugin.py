import textwrap

import pytest
import torch

from neighbor_grpo.backend.rewards import RewardError, RewardSet, build_reward

PLUGIN = """
import torch

def redness(images, prompts):
    return images[:, 0].mean(dim=(1, 2)) - images[:, 1:].mean(dim=(1, 2, 3))

class Keyword:
    version = "kw-1"

    def __init__(self, word, bonus="1.0"):
        self.word, self.bonus = word, float(bonus)

    def __call__(self, images, prompts):
        return [self.bonus if self.word in p else 0.0 for p in prompts]

def wrong_length(images, prompts):
    return torch.zeros(len(prompts) + 1)

def not_a_number(images, prompts):
    return [float("nan")] * len(prompts)

def words(images, prompts):
    return "high"
"""


@pytest.fixture(autouse=True)
def plugins_on(monkeypatch):
    monkeypatch.setenv("NGRPO_ALLOW_PLUGINS", "1")


@pytest.fixture
def plugin_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(textwrap.dedent(PLUGIN))
    return path


def _red_and_blue():
    red = torch.tensor([0.9, 0.1, 0.1])[:, None, None].expand(3, 8, 8)
    blue = torch.tensor([0.1, 0.1, 0.9])[:, None, None].expand(3, 8, 8)
    return torch.stack([red, blue, blue]), ["a red image", "a blue image", "a red image"]


def test_a_function_in_a_file_works_end_to_end(plugin_file):
    images, prompts = _red_and_blue()
    rewards = RewardSet.from_specs([f"plugin target={plugin_file}:redness"])
    raw = rewards.score(images, prompts)
    assert rewards.names == ["plugin"]
    assert raw["plugin"][0] > raw["plugin"][1] == raw["plugin"][2]
    assert rewards.versions["plugin"].startswith("file:")


def test_editing_the_plugin_file_changes_its_version(plugin_file):
    before = build_reward(f"plugin target={plugin_file}:redness").version
    plugin_file.write_text(plugin_file.read_text() + "\n# tuned\n")
    assert build_reward(f"plugin target={plugin_file}:redness").version != before


def test_a_class_gets_the_extra_options_and_two_plugins_get_distinct_keys(plugin_file):
    images, prompts = _red_and_blue()
    rewards = RewardSet.from_specs(
        [f"plugin target={plugin_file}:Keyword word=red bonus=2", f"plugin target={plugin_file}:redness"]
    )
    keyword, redness = rewards.names
    assert keyword != redness and "Keyword" in keyword and "redness" in redness
    assert rewards.score(images, prompts)[keyword].tolist() == [2.0, 0.0, 2.0]
    assert rewards.versions[keyword] == "kw-1"


def test_a_dotted_module_path_works(tmp_path, monkeypatch):
    (tmp_path / "team_rewards.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    images, prompts = _red_and_blue()
    assert build_reward("plugin target=team_rewards:redness").score(images, prompts).shape == (3,)


@pytest.mark.parametrize(
    "function, message",
    [("wrong_length", r"shape \(4,\) for 3 images"), ("not_a_number", "non-finite"), ("words", "returned a str")],
)
def test_bad_plugin_output_names_the_plugin(plugin_file, function, message):
    images, prompts = _red_and_blue()
    reward = build_reward(f"plugin target={plugin_file}:{function}")
    with pytest.raises(RewardError, match=f"plugin '{plugin_file}:{function}'.*{message}"):
        reward.score(images, prompts)


def test_bad_targets_say_what_is_wrong(plugin_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        build_reward(f"plugin target={tmp_path / 'missing.py'}:score")
    with pytest.raises(ValueError, match="defines no 'scor'"):
        build_reward(f"plugin target={plugin_file}:scor")
    with pytest.raises(ValueError, match="needs option 'target'"):
        build_reward("plugin")
