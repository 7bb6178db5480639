"""What a user can pick from, with availability; prompt files in the formats a user uploads."""

from __future__ import annotations

import pytest

from neighbor_grpo.backend import actions
from neighbor_grpo.backend.actions import ActionError, parse_prompt_file


def test_the_embedded_model_is_listed_as_available():
    tiny = {model.spec: model for model in actions.list_models()}["tiny"]
    assert tiny.available and tiny.detail == "found"


def test_rewards_say_whether_their_weights_were_found(monkeypatch, tmp_path):
    monkeypatch.setenv("NGRPO_REWARD_WEIGHTS", str(tmp_path))
    rewards = {reward.name: reward for reward in actions.list_rewards()}
    assert rewards["shapes_fidelity"].available and not rewards["shapes_fidelity"].needs_weights
    assert rewards["clip"].needs_weights and not rewards["clip"].available
    assert any("not found" in file for file in rewards["clip"].files)


def test_prompt_sets_list_built_ins_then_saved_ones(home):
    assert actions.save_prompts(home, "cats", ["a cat", " ", "a black cat"]) == 2
    sets = actions.list_prompt_sets(home)
    assert [s.name for s in sets][:2] == ["shapes:train", "shapes:test"]
    cats = sets[-1]
    assert (cats.name, cats.source, cats.count, cats.preview) == ("cats", "saved", 2, ["a cat", "a black cat"])
    with pytest.raises(ActionError, match="built-in"):
        actions.save_prompts(home, "shapes:train", ["x"])


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("p.txt", "# a comment\na red circle\n\n a blue square \n", ["a red circle", "a blue square"]),
        ("p.csv", 'id,prompt\n1,a red circle\n2,"a blue, big square"\n', ["a red circle", "a blue, big square"]),
        ("p.csv", "a red circle\na blue square\n", ["a red circle", "a blue square"]),
        ("p.jsonl", '{"prompt": "a red circle"}\n"a blue square"\n', ["a red circle", "a blue square"]),
    ],
)
def test_prompt_files_of_every_uploadable_kind_parse(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    assert parse_prompt_file(path) == expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.txt", "\n  \n# only a comment\n", "empty.txt holds no prompts"),
        ("p.jsonl", '{"text": "x"}\n', 'line 1 has no "prompt"'),
        ("p.jsonl", "not json\n", "line 1 is not JSON"),
        ("p.pdf", "x", "must be .txt, .csv, .jsonl"),
    ],
)
def test_bad_prompt_files_get_a_message_naming_the_fix(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ActionError, match=message):
        parse_prompt_file(path)
