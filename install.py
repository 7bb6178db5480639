"""Install what neighbor-grpo needs into the running Python, idempotently.

    python install.py          # runtime dependencies + this package (editable)
    python install.py --dev    # ... and the test tools

Never replaces an installed torch: an existing torch (a ComfyUI install's, say) is pinned while
the other packages install. Only when no torch is importable does it install the pair we test
with, torch==2.14.1 and torchvision==0.29.1. ComfyUI-Manager runs this file after installing
requirements.txt.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TORCH_PAIR = ["torch==2.14.1", "torchvision==0.29.1"]
# playwright drives Debian's chromium in the dashboard's browser tests (no browser download).
DEV_TOOLS = ["pytest>=8", "ruff>=0.6", "matplotlib>=3.8", "playwright>=1.40"]


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+", " ".join(command), flush=True)
    subprocess.check_call(command)


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def missing(requirements: list[str]) -> list[str]:
    """Requirements whose distribution is absent or at a version that does not satisfy them."""
    from packaging.requirements import Requirement

    result = []
    for line in requirements:
        requirement = Requirement(line)
        version = installed_version(requirement.name)
        if version is None or (requirement.specifier and version not in requirement.specifier):
            result.append(line)
    return result


def read_requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", action="store_true", help="also install the test and lint tools")
    args = parser.parse_args()

    if importlib.util.find_spec("packaging") is None:
        pip("packaging")
    if importlib.util.find_spec("torch") is None:
        pip(*TORCH_PAIR)
    wanted = read_requirements(ROOT / "requirements.txt") + (DEV_TOOLS if args.dev else [])
    needed = missing(wanted)
    if needed:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
            for name in ("torch", "torchvision"):
                version = installed_version(name)
                if version:
                    constraints.write(f"{name}=={version}\n")
        pip("--constraint", constraints.name, *needed)
    if installed_version("neighbor-grpo") is None:
        pip("--no-deps", "-e", str(ROOT))
    print("neighbor-grpo is installed; try: ngrpo --help")
    return 0


if __name__ == "__main__":
    sys.exit(main())
