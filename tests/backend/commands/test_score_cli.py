import json

import pytest

from neighbor_grpo.backend import cli
from neighbor_grpo.backend.sampling import to_pil
from neighbor_grpo.backend.world.shapes import ShapeSpec, render

PROMPT = "a red circle on a blue background, top left"


@pytest.fixture
def image_files(tmp_path):
    """right.png shows PROMPT; wrong.png has the wrong shape colour."""
    paths = []
    for name, colour in (("right", "red"), ("wrong", "green")):
        path = tmp_path / f"{name}.png"
        to_pil(render([ShapeSpec("circle", colour, "blue", "top left")], seeds=[0])[0]).save(path)
        paths.append(str(path))
    return paths


def _score(args, capsys):
    code = cli.main(["score", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_score_json_ranks_the_right_image_first_and_weights_the_total(image_files, capsys):
    args = ["--reward", "shapes_fidelity:2", "--reward", "sharpness:0"]
    code, out, _ = _score(
        [*args, "--image", image_files[0], "--image", image_files[1], "--prompt", PROMPT, "--json"], capsys
    )
    assert code == 0
    result = json.loads(out)
    assert [r["key"] for r in result["rewards"]] == ["shapes_fidelity", "sharpness"]
    right, wrong = result["images"]
    assert right["scores"]["shapes_fidelity"] > wrong["scores"]["shapes_fidelity"]
    assert right["total"] == pytest.approx(2 * right["scores"]["shapes_fidelity"])


def test_score_prints_a_table_with_one_prompt_per_image(image_files, capsys):
    other = "a green circle on a blue background, top left"
    code, out, _ = _score(
        [
            "--reward",
            "shapes_accuracy",
            "--image",
            image_files[0],
            "--image",
            image_files[1],
            "--prompt",
            PROMPT,
            "--prompt",
            other,
        ],
        capsys,
    )
    assert code == 0
    lines = out.splitlines()
    assert "shapes_accuracy" in lines[0] and "total" in lines[0]
    assert lines[1].split()[:2] == ["right.png", "1"] and lines[2].split()[:2] == ["wrong.png", "1"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", "a", "--prompt", "b", "--prompt", "c"], "one prompt for all images or one per image"),
        (["--prompt", PROMPT, "--reward", "clip path=/nowhere/clip.safetensors"], "/nowhere/clip.safetensors"),
        (["--prompt", PROMPT, "--reward", "sharpnes"], "unknown reward 'sharpnes'"),
    ],
)
def test_bad_input_exits_2_with_the_fix(image_files, capsys, args, message):
    code, _, err = _score(
        ["--reward", "shapes_fidelity", "--image", image_files[0], "--image", image_files[1], *args], capsys
    )
    assert code == 2
    assert message in err


def test_rewards_lists_every_reward_and_whether_weights_were_found(capsys, monkeypatch, tmp_path):
    (tmp_path / "aesthetic").mkdir()
    (tmp_path / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth").write_bytes(b"")
    monkeypatch.setenv("NGRPO_REWARD_WEIGHTS", str(tmp_path))
    assert cli.main(["rewards", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["rewards"]}
    assert rows["shapes_fidelity"]["needs_weights"] is False and rows["shapes_fidelity"]["weights"] == "-"
    assert rows["clip"]["needs_weights"] is True and rows["clip"]["weights"] == "missing"
    # The aesthetic head is there but its CLIP is not.
    assert rows["aesthetic"]["weights"] == "missing"
    assert str(tmp_path / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth") in rows["aesthetic"]["files"]
    assert cli.main(["rewards"]) == 0
    assert "pickscore" in capsys.readouterr().out
