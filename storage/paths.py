"""Paths read from registry rows are confined to their folder.

A row's folder or file path is data: a damaged or hand-edited registry (or one copied from
elsewhere) must not make a front end read, serve, export or delete files outside the home
folder. Every path built from a row goes through `inside`.
"""

from __future__ import annotations

import re
from pathlib import Path

from .registry import RegistryError


def inside(base: Path, relative: str | Path, what: str = "path") -> Path:
    """`base / relative`, resolved; a RegistryError if it would lead outside `base`."""
    base = Path(base).resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base):
        raise RegistryError(
            f"the registry's {what} {str(relative)!r} leads outside {base}; the registry row is damaged — "
            "refusing to use it (delete the run, or fix the row)"
        )
    return candidate


def clean_file_name(name: str, fallback: str = "lora") -> str:
    """A file name that is safe on every file system and cannot name a folder: letters, digits,
    `._-`; no leading dots (hidden files, `..`)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:120]
    return cleaned or fallback
