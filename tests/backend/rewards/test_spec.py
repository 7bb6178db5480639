import pytest

from neighbor_grpo.backend.rewards import RewardSpec


def test_parse_keeps_the_name_and_weight_forms():
    assert RewardSpec.parse("shapes_fidelity") == RewardSpec("shapes_fidelity", 1.0, {})
    assert RewardSpec.parse("sharpness:0.5") == RewardSpec("sharpness", 0.5, {})


def test_parse_reads_options_and_round_trips_through_text():
    spec = RewardSpec.parse("clip:2 arch=ViT-B-32 path=/models/c:lip.safetensors")
    assert spec == RewardSpec("clip", 2.0, {"arch": "ViT-B-32", "path": "/models/c:lip.safetensors"})
    assert RewardSpec.parse(spec.to_text()) == spec
    assert RewardSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("text", ["", ":2", "clip:heavy", "clip pathonly"])
def test_parse_rejects_malformed_text_with_the_fix(text):
    with pytest.raises(ValueError, match="NAME"):
        RewardSpec.parse(text)
