"""The one error every action raises: a message that names the problem and the fix."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class ActionError(ValueError):
    """What the user asked cannot be done; `str(error)` says why and what to do instead. Front ends
    show it as is (the CLI on stderr, the dashboard as a message, ComfyUI as a node error)."""


def action(function: Callable[P, R]) -> Callable[P, R]:
    """Turn the lower layers' user-facing errors (ValueError and its kin: config, registry, reward
    errors; a missing file) into ActionError, keeping the message and the cause."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ActionError:
            raise
        except FileNotFoundError as error:
            raise ActionError(str(error) if error.filename is None else f"file not found: {error.filename}") from error
        except ValueError as error:
            raise ActionError(str(error)) from error

    return wrapper
