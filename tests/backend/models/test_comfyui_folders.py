"""Inside a running ComfyUI, model discovery asks ComfyUI's own folder_paths first, so a pack
folder that is a link, --base-directory and extra_model_paths.yaml all work."""

from __future__ import annotations

import sys
import types

from neighbor_grpo.backend.models import comfyui


def test_a_running_comfyuis_folders_are_searched(tmp_path, monkeypatch):
    unet = tmp_path / "elsewhere" / "my_unets"
    unet.mkdir(parents=True)
    (unet / "model.safetensors").write_bytes(b"")
    install = tmp_path / "ComfyUI"
    install.mkdir()
    fake = types.ModuleType("folder_paths")
    fake.__file__ = str(install / "folder_paths.py")
    fake.get_folder_paths = lambda kind: [str(unet)] if kind == "diffusion_models" else []
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    found = comfyui.discover()
    assert unet in found.folders["diffusion_models"]
    assert install in found.roots
    assert unet / "model.safetensors" in found.files("diffusion_models")


def test_outside_comfyui_nothing_is_imported_for_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "folder_paths", raising=False)
    comfyui.discover()
    assert "folder_paths" not in sys.modules
