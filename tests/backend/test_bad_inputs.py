"""Every bad input in docs/bad_inputs.md gets its own clear message, never a traceback, and loses
nothing. LoRA files are covered in training/test_lora_files.py."""

from __future__ import annotations

import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from neighbor_grpo.backend.cli import main
from neighbor_grpo.backend.prompts import resolve_prompts
from neighbor_grpo.backend.rewards import RewardError, build_reward
from neighbor_grpo.backend.training.config import ConfigError, TrainConfig, load_config, parse_override
from neighbor_grpo.backend.training.divergence import TrainingDiverged, check_finite_update
from neighbor_grpo.storage.home import HomeError
from neighbor_grpo.storage.registry import Registry, RegistryError, forget_registries, open_registry


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_HOME", raising=False)
    yield tmp_path / "home"
    forget_registries()


def _cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# -- configs and --set ------------------------------------------------------------------------
def test_malformed_yaml_names_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nneighbor:\n  sigma_p: 0.3\n   steps: 8\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line 4"):
        load_config(path)
    code, err = _cli(capsys, "train", "--config", str(path), "--home", str(tmp_path / "h"))
    assert code == 2 and "invalid YAML at line 4" in err


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("iterations=[1,", r"--set 'iterations=\[1,': invalid YAML"),
        ("iterations", "--set expects KEY=VALUE"),
        ("neighbor..steps=3", "--set expects KEY=VALUE with a dotted key"),
    ],
)
def test_unparseable_set(pair, message):
    with pytest.raises(ConfigError, match=message):
        parse_override(pair)


def test_set_into_a_single_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("iterations: 5\n")
    with pytest.raises(ConfigError, match=r"iterations is a single value \(5\), not a group.*set iterations=VALUE"):
        load_config(path, {"iterations.max": 3})


def test_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml: line 1 is not UTF-8"):
        load_config(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optimizer": {"grad_clip": -1.0}}, r"optimizer.grad_clip must be in \(0, 1000000000\], got -1.0"),
        ({"optimizer": {"grad_clip": float("inf")}}, "optimizer.grad_clip must be a finite number"),
        ({"lora": {"rank": 0}}, r"lora.rank must be in \[1, 4096\], got 0"),
        ({"lora": {"alpha": 0}}, r"lora.alpha must be in \(0, 1000000\]"),
        ({"rewards": [{"name": "shapes_fidelity", "weight": float("nan")}]}, r"rewards\[0\].weight must be a finite"),
        ({"rewards": ["shapes_fidelity:inf"]}, r"rewards\[0\].weight must be a finite"),
        ({"eval": {"seeds_per_prompt": 0}}, r"eval.seeds_per_prompt must be in \[1, 10000\]"),
        ({"eval": {"max_prompts": 0}}, r"eval.max_prompts must be in \[1, "),
        ({"optimizer": {"learning_rate": 0.0}}, r"optimizer.learning_rate must be in \(0, 1\]"),
        ({"optimizer": {"learning_rate": 5.0}}, r"optimizer.learning_rate must be in \(0, 1\], got 5.0"),
        ({"optimizer": {"betas": [0.9, 1.0]}}, r"optimizer.betas\[1\] must be in \[0, 1\)"),
        ({"resolution": 4}, r"resolution must be in \[8, 8192\]"),
        ({"neighbor": {"clip_epsilon": 0.0}}, r"neighbor.clip_epsilon must be in \(0, 1\]"),
        ({"neighbor": {"sigma_p": float("nan")}}, "neighbor.sigma_p must be a finite number"),
        ({"optimizer": {"micro_batch": 0}}, r"optimizer.micro_batch must be in \[1, 65536\]"),
        ({"seed": -1}, r"seed must be in \[0, "),
        ({"sde": {"eta": 0.0}}, r"sde.eta must be in \(0, 10\]"),
    ],
)
def test_every_number_has_a_checked_range(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


def test_every_default_is_inside_its_range():
    TrainConfig().validate()


# -- the CLI prints errors, never tracebacks ----------------------------------------------------
def test_cli_errors_have_no_traceback(tmp_path, capsys):
    code, err = _cli(capsys, "train", "--config", str(tmp_path / "none.yaml"), "--home", str(tmp_path / "h"))
    assert code == 2 and "config file not found" in err
    path = tmp_path / "c.yaml"
    path.write_text("iterations: 5\n")
    code, err = _cli(capsys, "train", "--config", str(path), "--set", "lora.rank=0", "--home", str(tmp_path / "h"))
    assert code == 2 and "lora.rank must be in [1, 4096], got 0" in err


def test_unexpected_errors_are_one_line_too(monkeypatch, capsys):
    from neighbor_grpo.backend.commands import rewards

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(rewards, "run", broken)
    code, err = _cli(capsys, "rewards")
    assert code == 1 and "KeyError: 'surprise'" in err and "NGRPO_TRACEBACK=1" in err


# -- NaN and infinity -----------------------------------------------------------------------------
def test_nan_metrics_never_reach_the_database_as_an_sql_error(home):
    from neighbor_grpo.backend.actions import RunRequest, queue_run
    from neighbor_grpo.storage.history import metric_series
    from neighbor_grpo.storage.reporter import RegistryReporter

    run_id = queue_run(home, RunRequest({"name": "nan", "iterations": 3}, start_worker=False)).run_id
    reporter = RegistryReporter(open_registry(home), run_id)
    reporter.metrics(1, {"reward": float("nan"), "loss": float("inf"), "lr": 0.001})
    reporter.flush()
    series = metric_series(home, run_id, ["lr", "reward", "loss"])
    assert {name for name, points in series.items() if points} == {"lr"}


def test_a_diverged_update_stops_the_run_before_the_weights_change():
    with pytest.raises(TrainingDiverged, match=r"diverged at iteration 7 \(grad_norm=nan\).*learning_rate"):
        check_finite_update(7, torch.tensor(float("nan")), {"loss": 0.1})
    with pytest.raises(TrainingDiverged, match="loss=inf"):
        check_finite_update(7, torch.tensor(1.0), {"loss": float("inf")})
    check_finite_update(7, torch.tensor(1.0), {"loss": 0.5})


# -- reward plugins and remote rewards --------------------------------------------------------
def test_plugins_are_off_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_ALLOW_PLUGINS", raising=False)
    plugin = tmp_path / "mine.py"
    plugin.write_text("def score(images, prompts):\n    return [0.0] * len(prompts)\n")
    with pytest.raises(RewardError, match=r"plugins run arbitrary Python code.*NGRPO_ALLOW_PLUGINS=1"):
        build_reward(f"plugin target={plugin}:score")
    from neighbor_grpo.backend.rewards.plugin import plugin_status

    assert "off" in plugin_status()
    monkeypatch.setenv("NGRPO_ALLOW_PLUGINS", "1")
    assert "allowed" in plugin_status()
    assert build_reward(f"plugin target={plugin}:score").score(torch.zeros(2, 3, 4, 4), ["a", "b"]).tolist() == [0, 0]


def test_queueing_a_plugin_run_without_the_opt_in_is_refused(home, tmp_path, monkeypatch):
    from neighbor_grpo.backend.actions import ActionError, RunRequest, queue_run
    from neighbor_grpo.storage.runs import list_runs

    monkeypatch.delenv("NGRPO_ALLOW_PLUGINS", raising=False)
    spec = {"name": "plugin", "options": {"target": f"{tmp_path / 'x.py'}:score"}}
    with pytest.raises(ActionError, match="off by default"):
        queue_run(home, RunRequest({"name": "p", "rewards": [spec]}, start_worker=False))
    assert list_runs(home) == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def score(images, prompts)\n    return 1\n", r"importing .*broken.py failed \(line 1\): SyntaxError"),
        ("import not_a_module_we_have\n", r"broken.py failed \(broken.py line 1\): ModuleNotFoundError"),
        ("\n\nraise RuntimeError('needs a GPU')\n", r"failed \(broken.py line 3\): RuntimeError: needs a GPU"),
    ],
)
def test_a_plugin_that_fails_on_import(tmp_path, monkeypatch, source, message):
    monkeypatch.setenv("NGRPO_ALLOW_PLUGINS", "1")
    plugin = tmp_path / "broken.py"
    plugin.write_text(textwrap.dedent(source))
    with pytest.raises(RewardError, match=message):
        build_reward(f"plugin target={plugin}:score")


class Garbage(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def garbage_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("body", "options", "message"),
    [
        (b"<html>502 Bad Gateway</html>", "", "not JSON"),
        (json.dumps({"score": 1}).encode(), "", 'without "scores"'),
        (json.dumps({"scores": ["high", "low"]}).encode(), "", "it must return one number per image"),
        (json.dumps({"scores": [1.0]}).encode(), "", r"shape \(1,\) for 2 images"),
        (b"[" + b"0.5," * 5000 + b"0.5]", " max_bytes=2048", "answered more than 2048 bytes"),
    ],
)
def test_a_remote_reward_answering_garbage(garbage_server, body, options, message):
    garbage_server.body = body
    reward = build_reward(f"remote url=http://127.0.0.1:{garbage_server.server_port}/score retries=0{options}")
    with pytest.raises(RewardError, match=message):
        reward.score(torch.zeros(2, 3, 8, 8), ["a", "b"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("timeout=0", r"option timeout='0' is not a number in \[0.1, 3600\]"),
        ("timeout=nan", "is not a finite number"),
        ("deadline=-5", "option deadline='-5' is not a number in"),
        ("retries=-1", "option retries='-1' is not an integer of at least 0"),
        ("max_bytes=10", "option max_bytes='10' is not an integer of at least 1024"),
    ],
)
def test_remote_options_are_validated(options, message):
    with pytest.raises(ValueError, match=message):
        build_reward(f"remote url=http://127.0.0.1:9/score {options}")


# -- home folder, registry file, prompt files -------------------------------------------------------
def test_a_home_that_is_a_file(tmp_path):
    path = tmp_path / "home"
    path.write_text("oops")
    with pytest.raises(HomeError, match=r"home .* is a file, not a folder.*NGRPO_HOME or --home"):
        Registry(path)


def test_a_home_that_is_not_writable(tmp_path, monkeypatch):
    from pathlib import Path

    def refuse(self, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", refuse)  # running as root, chmod would not stop us
    with pytest.raises(HomeError, match=r"is not writable \(Permission denied\)"):
        Registry(tmp_path / "home")


def test_a_corrupt_registry_file(home):
    home.mkdir(parents=True)
    (home / "registry.sqlite").write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(RegistryError, match=r"registry.sqlite is not a readable neighbor-grpo registry.*move it aside"):
        open_registry(home)


def test_a_registry_from_a_newer_version(home):
    registry = open_registry(home)
    with registry.write() as session:
        from sqlalchemy import text

        session.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    forget_registries()
    with pytest.raises(RegistryError, match=r"schema revision 0999, newer than this neighbor-grpo knows; upgrade"):
        open_registry(home)


def test_a_prompt_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes(b"a red circle\n" + b"un cercle bleu\n" + "caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"prompts.txt, line 3: not UTF-8 text \(byte 0xe9 at column 4\)"):
        resolve_prompts(str(path))


# -- paths from registry rows and exported names ---------------------------------------------
def test_a_registry_row_cannot_lead_outside_its_folder(home, tmp_path):
    from sqlalchemy import update

    from neighbor_grpo.backend.actions import RunRequest, queue_run
    from neighbor_grpo.backend.worker import Worker
    from neighbor_grpo.storage.history import list_checkpoints
    from neighbor_grpo.storage.runs import get_run
    from neighbor_grpo.storage.schema import Run

    run_id = queue_run(home, RunRequest({"name": "escape", "iterations": 2}, start_worker=False)).run_id
    with open_registry(home).write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(folder="../../etc"))
    with pytest.raises(RegistryError, match=r"run folder '../../etc' leads outside"):
        list_checkpoints(home, run_id)
    Worker(home, exit_when_idle=True).serve(handle_signals=False)
    run = get_run(home, run_id)
    assert run.status == "failed" and "leads outside" in run.error


def test_exported_lora_names_are_cleaned_and_written_whole(home, tmp_path):
    from neighbor_grpo.backend.actions import RunRequest, queue_run
    from neighbor_grpo.backend.files import sha256_file
    from neighbor_grpo.backend.training.reporting import CheckpointRecord
    from neighbor_grpo.storage.paths import clean_file_name
    from neighbor_grpo.storage.reporter import RegistryReporter
    from neighbor_grpo.storage.runs import export_lora

    assert clean_file_name("../../my run: v2?") == "my-run-v2"
    assert clean_file_name("..") == "lora"
    run_id = queue_run(home, RunRequest({"name": "a/b:c", "iterations": 2}, start_worker=False)).run_id
    registry = open_registry(home)
    from neighbor_grpo.storage.runs import get_run

    folder = get_run(home, run_id).folder
    lora = folder / "checkpoints" / "step-000001" / "lora.safetensors"
    lora.parent.mkdir(parents=True)
    lora.write_bytes(b"weights")
    record = CheckpointRecord(1, "checkpoints/step-000001", {"lora.safetensors": sha256_file(lora)},
                              "checkpoints/step-000001/lora.safetensors")  # fmt: skip
    RegistryReporter(registry, run_id).checkpoint(record)
    out = tmp_path / "loras"
    out.mkdir()
    exported = export_lora(home, run_id, out=out)
    assert exported.parent == out and exported.name == "a-b-c-step1.safetensors"
    lora.write_bytes(b"damaged")
    with pytest.raises(RegistryError, match="does not match its recorded sha256"):
        export_lora(home, run_id, out=out / "second.safetensors")
    assert sorted(p.name for p in out.iterdir()) == ["a-b-c-step1.safetensors"]  # no partial file left


def test_ngrpo_rewards_says_whether_plugins_may_run(monkeypatch, capsys):
    monkeypatch.delenv("NGRPO_ALLOW_PLUGINS", raising=False)
    assert main(["rewards"]) == 0
    assert "reward plugins are off; set NGRPO_ALLOW_PLUGINS=1" in capsys.readouterr().out
    assert main(["rewards", "--json", "--allow-plugins"]) == 0
    assert json.loads(capsys.readouterr().out)["plugins_allowed"] is True
