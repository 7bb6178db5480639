"""The dashboard without a browser: its flags, what it serves, which events are public, and the
handlers' translation of widget values and errors."""

from __future__ import annotations

import subprocess
import sys

import gradio as gr
import pandas as pd
import pytest
import requests

from neighbor_grpo import app as dashboard_app
from neighbor_grpo.backend import actions
from neighbor_grpo.storage.registry import forget_registries
from neighbor_grpo.ui import common, compare, new_run, run_detail

DESTRUCTIVE = {"do_launch", "do_cancel", "do_resume", "ask_delete", "do_delete", "run_compare", "copy_into"}
READ_ONLY = {
    "refreshed",
    "runs_tick",
    "show",
    "detail_tick",
    "pick",
    "refollow",
    "describe_prompts",
    "describe_estimate",
    "choose_run",
}


def test_importing_the_app_builds_nothing_and_loads_no_gradio():
    code = "import sys, neighbor_grpo.app; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.7", "::"])
def test_a_network_host_needs_auth_or_an_explicit_override(host, capsys):
    with pytest.raises(SystemExit):
        dashboard_app.main(["--host", host])
    assert "--auth USER:PASSWORD" in capsys.readouterr().err


def test_loopback_and_auth_parsing():
    assert all(dashboard_app.is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not dashboard_app.is_loopback("0.0.0.0")
    assert dashboard_app.parse_auth("me:secret") == ("me", "secret")
    with pytest.raises(SystemExit, match="USER:PASSWORD"):
        dashboard_app.parse_auth("me")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("served") / "home"
    run_id = actions.queue_run(home, actions.RunRequest({"name": "r", "iterations": 2}, start_worker=False)).run_id
    folder = actions.get_run(home, run_id).folder
    (folder / "picture.png").write_bytes(b"\x89PNG not really")
    (home / "secret.txt").write_text("registry-level file")
    app = dashboard_app.build_app(home)
    port = dashboard_app.free_port("127.0.0.1")
    dashboard_app.launch(app, "127.0.0.1", port, None, block=False)
    yield app, f"http://127.0.0.1:{port}", home, folder
    app.close()
    forget_registries()


def test_run_folders_are_served_in_place_and_nothing_else(served):
    _, url, home, folder = served
    image = requests.get(url + common.file_url(folder / "picture.png"), timeout=10)
    assert image.status_code == 200 and image.content == b"\x89PNG not really"
    for outside in (home / "secret.txt", home / "registry.sqlite", folder / ".." / ".." / "secret.txt"):
        assert requests.get(url + common.file_url(outside), timeout=10).status_code in (403, 404)
    assert requests.get(url + "/monitoring", timeout=10).status_code in (403, 404)


def test_destructive_events_are_private_and_refreshes_never_queue(served):
    app = served[0]
    by_name: dict[str, list] = {}
    for fn in app.fns.values():
        by_name.setdefault(getattr(fn.fn, "__name__", ""), []).append(fn)
    assert set(by_name) >= DESTRUCTIVE and set(by_name) >= READ_ONLY
    for name in DESTRUCTIVE:
        assert all(fn.api_visibility == "private" for fn in by_name[name]), name
    for name in READ_ONLY:
        assert all(fn.concurrency_limit is None for fn in by_name[name]), name


def test_handlers_turn_action_errors_into_page_messages():
    @common.shown
    def refuses():
        raise actions.ActionError("no run 'x'; pick one from the list")

    @common.shown
    def breaks():
        raise KeyError("surprise")

    with pytest.raises(gr.Error, match="no run 'x'; pick one from the list"):
        refuses()
    with pytest.raises(gr.Error, match=r"unexpected KeyError: 'surprise'.*terminal"):
        breaks()


def test_widget_values_translate_to_requests():
    assert compare.parse_seeds("0, 1 7") == [0, 1, 7]
    with pytest.raises(actions.ActionError, match="whole numbers"):
        compare.parse_seeds("0, one")
    assert new_run.parse_reward_lines("shapes_fidelity\n\nsharpness:0.5 batch_size=4") == [
        {"name": "shapes_fidelity", "weight": 1.0, "options": {}},
        {"name": "sharpness", "weight": 0.5, "options": {"batch_size": "4"}},
    ]
    with pytest.raises(actions.ActionError, match="at least one reward"):
        new_run.parse_reward_lines("  \n")
    config: dict = {}
    new_run.put(config, "neighbor.sigma_p", 0.3)
    assert new_run.get(config, "neighbor.sigma_p") == 0.3


def test_curves_split_into_plots_by_metric_family():
    curves = {"reward": [(1, 0.5)], "reward/shapes_fidelity": [(1, 0.4)], "eval/gold": [(0, 0.8)], "loss": [(1, 0.1)]}
    frames = run_detail.frames(curves)
    assert len(frames) == len(run_detail.PLOTS)
    assert set(frames[0]["metric"]) == {"reward", "reward/shapes_fidelity"}
    assert set(frames[1]["metric"]) == {"eval/gold"}
    assert list(frames[2]["metric"]) == ["loss"] and isinstance(frames[2], pd.DataFrame)


def test_html_views_escape_prompts(tmp_path):
    group = actions.SampleGroup("<script>x</script>", [actions.SampleImage(tmp_path / "a.png", 1, {"r": 0.5})])
    html = run_detail.gallery_html(actions.Gallery(3, [3], [group]))
    assert "<script>" not in html and "&lt;script&gt;" in html and "seed 1" in html


def test_new_run_tab_shows_whether_reward_plugins_may_run(monkeypatch):
    monkeypatch.delenv("NGRPO_ALLOW_PLUGINS", raising=False)
    assert "Plugins: reward plugins are off; set NGRPO_ALLOW_PLUGINS=1" in new_run.rewards_help()
    monkeypatch.setenv("NGRPO_ALLOW_PLUGINS", "1")
    assert "Plugins: reward plugins are allowed" in new_run.rewards_help()
