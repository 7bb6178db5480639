"""Where the registry lives: --home beats $NGRPO_HOME beats ComfyUI's user folder beats the
user data folder, so the CLI, the dashboard and ComfyUI nodes meet in the same registry."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from neighbor_grpo.storage.home import resolve_home, run_folder_name


def test_explicit_home_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NGRPO_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "flag") == (tmp_path / "flag").resolve()
    assert resolve_home(None) == (tmp_path / "env").resolve()


def test_inside_comfyui_the_home_is_under_its_user_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_HOME", raising=False)
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_user_directory = lambda: str(tmp_path / "comfy-user")
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    assert resolve_home() == (tmp_path / "comfy-user" / "neighbor-grpo").resolve()


def test_default_is_the_user_data_folder(monkeypatch):
    monkeypatch.delenv("NGRPO_HOME", raising=False)
    monkeypatch.delitem(sys.modules, "folder_paths", raising=False)
    from platformdirs import user_data_dir

    assert resolve_home() == Path(user_data_dir("neighbor-grpo")).resolve()


def test_run_folder_names_are_safe_and_sort_by_id():
    assert run_folder_name(7, "my run/../x") == "0007-my-run-..-x"
    assert run_folder_name(12, "///") == "0012-run"
    assert sorted([run_folder_name(10, "b"), run_folder_name(9, "a")])[0].startswith("0009")
