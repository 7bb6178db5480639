"""What every tab shares: turning action errors into page messages, run pickers, file URLs."""

from __future__ import annotations

import functools
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import gradio as gr

from ..backend import actions

log = logging.getLogger("neighbor_grpo.dashboard")
# How often a visible page asks the registry while something runs (2 s cost training ~25 %: docs/dashboard.md).
POLL_S = 5.0


@dataclass(frozen=True)
class Context:
    """What every tab needs: the registry folder (never a global: each app gets its own)."""

    home: Path


def shown(function: Callable) -> Callable:
    """Handlers raise readable messages: an ActionError as it is, anything else named with its
    type and a pointer to the terminal (where the traceback goes), never a silent failure."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except actions.ActionError as error:
            raise gr.Error(str(error), duration=None) from error
        except Exception as error:
            log.exception("dashboard handler %s failed", function.__name__)
            raise gr.Error(
                f"unexpected {type(error).__name__}: {error} (the traceback is in the terminal running app.py)",
                duration=None,
            ) from error

    return wrapper


def file_url(path: Path) -> str:
    """A run-folder file as the page fetches it: served in place (gr.set_static_paths), not copied."""
    return "/gradio_api/file=" + quote(str(path))


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else ""


def run_choices(home: Path) -> list[tuple[str, int]]:
    """(label, id) pairs for a run picker, newest first."""
    return [(f"{row.id} · {row.name} ({row.status})", row.id) for row in actions.list_runs(home, limit=500)]


def run_picker_update(home: Path, wanted: int | None = None) -> dict:
    """Fresh choices, keeping `wanted` (else the newest run) selected."""
    choices = run_choices(home)
    ids = [value for _, value in choices]
    value = wanted if wanted in ids else (ids[0] if ids else None)
    return gr.update(choices=choices, value=value)


def number(value, default: float | None = None) -> float | None:
    """A gr.Number's value (None when empty) as a float, or the default."""
    return default if value is None or value == "" else float(value)
