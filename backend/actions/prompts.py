"""Prompts from wherever a user keeps them: a built-in set, a set saved in the registry, a file
(.txt, .csv, .jsonl) or an inline list. Every path ends in a non-empty list or a clear error."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ...storage.prompt_sets import get_prompt_set, save_prompt_set
from ...storage.prompt_sets import list_prompt_sets as registry_prompt_sets
from ..prompts import BUILTIN_SETS, read_prompt_lines, resolve_prompts
from .errors import ActionError, action

Home = str | os.PathLike | None
PROMPT_FILE_TYPES = (".txt", ".csv", ".jsonl")


def resolve_prompt_source(home: Home, source: str | list[str]) -> list[str]:
    """A built-in set, a saved set (by name), a file path, or a list → its prompts (non-empty)."""
    if isinstance(source, str) and source not in BUILTIN_SETS and source in registry_prompt_sets(home):
        return get_prompt_set(home, source)
    if isinstance(source, str) and Path(source).suffix.lower() in (".csv", ".jsonl"):
        return parse_prompt_file(source)
    return resolve_prompts(source)


def freeze_prompt_source(home: Home, source: str | list[str]) -> str | list[str]:
    """What a queued run stores: built-in set names stay names; a saved set or a file becomes its
    list, so the worker trains what the user saw when queueing, whatever changes later."""
    if isinstance(source, str) and source in BUILTIN_SETS:
        return source
    return resolve_prompt_source(home, source)


def _rows_from_csv(text: str) -> list[str]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("prompt") if "prompt" in header else 0
    body = rows[1:] if "prompt" in header else rows
    return [row[column] for row in body if len(row) > column]


def _rows_from_jsonl(text: str, name: str) -> list[str]:
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise ActionError(f"{name} line {number} is not JSON; write one object per line") from None
        if isinstance(value, dict) and isinstance(value.get("prompt"), str):
            prompts.append(value["prompt"])
        elif isinstance(value, str):
            prompts.append(value)
        else:
            raise ActionError(f'{name} line {number} has no "prompt"; write {{"prompt": "a red circle ..."}}')
    return prompts


@action
def parse_prompt_file(path: str | os.PathLike) -> list[str]:
    """Prompts of a .txt (one per line, # comments), .csv (a "prompt" column, else the first) or
    .jsonl file (objects with "prompt", or strings)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PROMPT_FILE_TYPES:
        raise ActionError(f"{path.name}: prompt files must be {', '.join(PROMPT_FILE_TYPES)}; got {suffix or 'none'}")
    if not path.is_file():
        raise ActionError(f"prompt file not found: {path}")
    text = "\n".join(read_prompt_lines(path))
    if suffix == ".txt":
        rows = [line for line in text.splitlines() if not line.strip().startswith("#")]
    elif suffix == ".csv":
        rows = _rows_from_csv(text)
    else:
        rows = _rows_from_jsonl(text, path.name)
    prompts = [row.strip() for row in rows if row.strip()]
    if not prompts:
        raise ActionError(f"{path.name} holds no prompts; put one prompt per line (or row) and upload it again")
    return prompts


@action
def save_prompts(home: Home, name: str, prompts: list[str], description: str | None = None) -> int:
    """Save (or replace) a named prompt set in the registry; the number of prompts kept."""
    if name in BUILTIN_SETS:
        raise ActionError(f"{name!r} is a built-in set; choose another name")
    save_prompt_set(home, name, prompts, description)
    return len(get_prompt_set(home, name))
